"""``twisted.internet.ssl``'s server context factory, on the standard ``ssl``
module: ``from twisted.internet import ssl`` ports as ``from reactor import ssl``.

``DefaultOpenSSLContextFactory(key, cert)`` is how most Twisted servers give
``listenSSL`` their certificate; its ``getContext()`` returns an
``ssl.SSLContext``, which is what ``reactor.tls`` takes.
"""

from __future__ import annotations

import ssl

__all__ = ["DefaultOpenSSLContextFactory"]


class DefaultOpenSSLContextFactory:
    """A TLS server's context from a private key file and a certificate file
    (PEM; the two may be one file).  The files are read once, here, so a
    missing or mismatched file fails at once with ``ssl.SSLError`` or
    ``OSError`` rather than on the first connection.  ``sslmethod`` is
    accepted for Twisted's signature and ignored: the context negotiates the
    best TLS version both ends have, as Twisted's default does."""

    isClient = 0

    def __init__(self, privateKeyFileName: str, certificateFileName: str,
                 sslmethod: object = None) -> None:
        self.privateKeyFileName = privateKeyFileName
        self.certificateFileName = certificateFileName
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(certificateFileName, privateKeyFileName)

    def getContext(self) -> ssl.SSLContext:
        """The context every connection of a port made with it shares."""
        return self._context
