/*
 * tracer._native: the hot half of the tracer, in C.
 *
 * Why C.  A traced Deferred with ten callbacks passes 32 instrumentation points, and the
 * overhead budget (traced at most 1.5x untraced) leaves about 60 ns per point: one Python
 * method call costs about that on its own, before reading the clock or looking anything up.
 * So the per-event work lives here: reading the clock, naming the function (a site, cached
 * per code object), and appending a few integers to a buffer.  Turning those integers into
 * JSON lines also lives here, and runs with the GIL released, so the writer thread no longer
 * competes with the application for it.  Rare events (connections, errors, stalls, marks)
 * stay in Python (tracer/probe.py) and reach the buffer as finished lines.
 *
 * Buffer.  Events recorded since the last drain are int64 words: a header word (the row kind
 * in the low byte, the number of fields above it) and the fields.  A finished line is a
 * header and a reference to a bytes object.  A hook does every call that could run Python
 * code (attribute reads, allocations, which can start the garbage collector, whose finalizers
 * record events too) before it touches the buffer, then appends the whole event in C: an
 * event never interleaves with another one.
 *
 * Drain.  The writer thread swaps the buffer for an empty one while holding the GIL, then
 * formats and writes the lines with the GIL released: the application runs meanwhile.
 *
 * Probe.  The hot instrumentation points of reactor/_instrument.py, as C methods; the rare
 * ones are bound onto it by the Python half (tracer.probe.TraceProbe), which also serves its
 * slow paths.  It keeps the stack of calls in progress that the watchdog reads (``top()``).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stddef.h>  /* offsetof: Python.h includes it before 3.13 only */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>

/* Python versions.  CPython 3.11 is read through two of its internals, each worth a large part
 * of a hook's cost: the interpreter's frames, to read the scheduling line without creating
 * frame objects (caller_key), and the layout of small ints (int_or_nil).  3.12 and later use
 * the public API and the documented unstable one (PyUnstable_*) only: 3.12 made both costs
 * public (PyUnstable_Long_CompactValue; frame objects that are dropped unused cost less).
 * docs/architecture.md ("Python versions") has the versions this is tried on. */
#if PY_VERSION_HEX < 0x030C0000
#define CPYTHON_311_INTERNALS 1
#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE
/* 3.12 moved the member types from structmember.h to Python.h, with a Py_ prefix. */
#include <structmember.h>
#define Py_T_INT T_INT
#define Py_T_ULONG T_ULONG
#define Py_T_LONGLONG T_LONGLONG
#define Py_T_PYSSIZET T_PYSSIZET
#define Py_T_OBJECT_EX T_OBJECT_EX
#define Py_READONLY READONLY
#endif

/* Free threading.  The buffer, the site cache and the call stack are shared by every thread
 * that records (marks, Deferreds fired in pool threads, the writer's drain) and rely on the
 * GIL to take turns: a lock on each of them would be a large part of a hook's cost.  So the
 * module declares that it needs the GIL; on a free-threaded build (3.13t, 3.14t) importing it
 * turns the GIL on for the process (CPython says so in a RuntimeWarning), unless PYTHON_GIL=0
 * forces it off, which this module does not support. */

/* -- time and numbers ------------------------------------------------------------------ */

/* For the few helpers every hook runs, where a call's own cost shows (gcc and clang). */
#if defined(__GNUC__)
#define ALWAYS_INLINE __attribute__((always_inline))
#else
#define ALWAYS_INLINE
#endif

/* A field with no value: written as JSON null. */
#define NIL INT64_MIN

/* The clock of time.monotonic_ns(), which the rest of the tracer and the reactor use. */
static inline int64_t
monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The hooks' clock.  A time-stamp-counter clock scaled to nanoseconds saved about 18 ns a
 * read, but its rate, corrected only when a buffer drained, drifted by seconds between sparse
 * drains on a loaded VM (a call's lag came out as 72 s); clock_gettime through the vDSO is
 * the same clock as time.monotonic_ns(), the watchdog's and the reactor's, by construction. */
static inline int64_t now_ns(void) { return monotonic_ns(); }

/* An int attribute that may be None (an id not given yet): NIL then, or on any error. */
static inline int64_t
int_or_nil(PyObject *value)
{
    if (value == NULL || !PyLong_CheckExact(value)) {
        if (value == NULL && PyErr_Occurred())
            PyErr_Clear();
        return NIL;
    }
    /* ids are small: one 30-bit digit */
#ifdef CPYTHON_311_INTERNALS
    if (Py_SIZE(value) == 1)
        return ((PyLongObject *)value)->ob_digit[0];
#else
    if (PyUnstable_Long_IsCompact((PyLongObject *)value))
        return PyUnstable_Long_CompactValue((PyLongObject *)value);
#endif
    int64_t v = PyLong_AsLongLong(value);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return NIL;
    }
    return v;
}

/* A flag argument: Python passes bools, anything else is asked (-1: that raised). */
static inline int
flag(PyObject *value)
{
    if (value == Py_True)
        return 1;
    if (value == Py_False || value == Py_None)
        return 0;
    return PyObject_IsTrue(value);
}

/* The exception being raised, taken (the error indicator is clear after), or NULL. */
static inline PyObject *
take_error(void)
{
#ifdef CPYTHON_311_INTERNALS
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL)
        PyException_SetTraceback(value, tb);
    Py_DECREF(type);
    Py_XDECREF(tb);
    return value;
#else
    return PyErr_GetRaisedException();
#endif
}

/* Raise ``exc`` (taken by take_error) again, as it was; the reference is stolen. */
static inline void
give_error(PyObject *exc)
{
#ifdef CPYTHON_311_INTERNALS
    PyErr_Restore(Py_NewRef(Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#else
    PyErr_SetRaisedException(exc);
#endif
}

/* -- row kinds and how each one is written --------------------------------------------- */

enum row {
    ROW_CALL = 1, ROW_DCALL, ROW_TIMER, ROW_DNEW, ROW_DADD, ROW_DFIRE, ROW_POLL, ROW_LINE,
    N_ROWS
};

/* Each row's opening text and the type of each field: 'i' an integer (or null), 'b' a boolean,
 * 'k' a call kind; fields past the end of the types (poll's fd, mask pairs) are integers;
 * ``close`` ends the row (a call row's last field, exc, is null: a call that raised is
 * written in object form).  docs/trace-format.md ("Two line forms") is the reference; the
 * module exports each kind's types as ROW_LAYOUTS, for a test to compare with tracer/format.py. */
#define ROW(open, types, close) {open, sizeof(open) - 1, types, close, sizeof(close) - 1}
static const struct {
    const char *open;   /* ["kind", */
    size_t open_len;
    const char *types;
    const char *close;
    size_t close_len;
} ROWS[N_ROWS] = {
    [ROW_CALL] = ROW("[\"call\",", "ikiiiii", ",null]"),
    [ROW_DCALL] = ROW("[\"dcall\",", "iiiiibb", "]"),
    [ROW_TIMER] = ROW("[\"timer\",", "iiiii", "]"),
    [ROW_DNEW] = ROW("[\"dnew\",", "iii", "]"),
    [ROW_DADD] = ROW("[\"dadd\",", "iiii", "]"),
    [ROW_DFIRE] = ROW("[\"dfire\",", "iib", "]"),
    [ROW_POLL] = ROW("[\"poll\",", "ii", "]"),
};

/* What the loop was running: the call kinds of the probe contract, and Deferred callbacks. */
enum kind { K_TIMER, K_READ, K_WRITE, K_THREAD, K_TRIGGER, K_OTHER, K_DEFERRED, N_KINDS };
static const char *KIND_NAMES[N_KINDS] = {
    "timer", "read", "write", "thread", "trigger", "other", "deferred"};
static size_t KIND_LENGTHS[N_KINDS];
static PyObject *kind_strings[N_KINDS];

static inline int64_t
header(int row, Py_ssize_t fields)
{
    return (int64_t)row | ((int64_t)fields << 8);
}

/* -- growable arrays of words ------------------------------------------------------------ */

typedef struct {
    int64_t *words;
    Py_ssize_t len, cap;
    PyObject **lines;    /* the finished lines among the words, whose references they hold */
    Py_ssize_t nlines, lines_cap;
} Words;

static int
words_grow(Words *w, Py_ssize_t need)
{
    Py_ssize_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + need)
        cap *= 2;
    int64_t *words = PyMem_RawRealloc(w->words, (size_t)cap * sizeof(int64_t));
    if (words == NULL)
        return -1;
    w->words = words;
    w->cap = cap;
    return 0;
}

/* -- Buffer ------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    Words buf;           /* events since the last drain */
    Words spare;         /* the buffer drained last time, kept for reuse */
    Py_ssize_t events;   /* events in buf */
    Py_ssize_t capacity; /* most events between two drains; more are dropped */
    int wake_fd;         /* written to when the buffer is half full (-1: none) */
    long long dropped;
    /* Loop health, updated by the probe on the reactor thread, read by the writer. */
    long long iterations, idle_ns, poll_since;
    long long lag_max, lag_sum, lag_n;
    int draining;
    char *out;           /* the drain's output buffer */
    size_t out_cap;
} Buffer;

/* Room for one event of ``fields`` fields (header included), or NULL when it is dropped:
 * the buffer holds ``capacity`` events already (``keep`` events are never dropped for that)
 * or memory ran out. */
static inline int64_t *
buffer_reserve(Buffer *b, Py_ssize_t fields, int keep)
{
    if ((b->events >= b->capacity && !keep)
            || (b->buf.len + fields + 1 > b->buf.cap && words_grow(&b->buf, fields + 1) < 0)) {
        b->dropped++;
        return NULL;
    }
    int64_t *p = b->buf.words + b->buf.len;
    b->buf.len += fields + 1;
    if (++b->events == b->capacity / 2 && b->wake_fd >= 0) {
        /* Ask the writer for an early drain; a full pipe means it is asked already. */
        ssize_t ignored = write(b->wake_fd, "!", 1);
        (void)ignored;
    }
    return p;
}

/* Empty ``w``, dropping the references its finished lines hold (the GIL is held: this is
 * the writer's only work with it after formatting, so it looks at the lines only). */
static void
release_lines(Words *w)
{
    for (Py_ssize_t i = 0; i < w->nlines; i++)
        Py_DECREF(w->lines[i]);
    w->nlines = 0;
    w->len = 0;
}

static void
Buffer_dealloc(Buffer *self)
{
    release_lines(&self->buf);
    release_lines(&self->spare);
    PyMem_RawFree(self->buf.words);
    PyMem_RawFree(self->spare.words);
    PyMem_RawFree(self->buf.lines);
    PyMem_RawFree(self->spare.lines);
    PyMem_RawFree(self->out);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Buffer_init(Buffer *self, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"capacity", "wake_fd", NULL};
    Py_ssize_t capacity;
    int wake_fd = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n|i", names, &capacity, &wake_fd))
        return -1;
    if (capacity < 1) {
        PyErr_SetString(PyExc_ValueError, "capacity must be at least 1");
        return -1;
    }
    self->capacity = capacity;
    self->wake_fd = wake_fd;
    return 0;
}

PyDoc_STRVAR(line_doc,
"line(data, keep=False)\n--\n\n"
"Append a finished line (bytes: one JSON value, no newline).  ``keep``: never dropped\n"
"(``site`` lines: later events refer to them).");

static PyObject *
Buffer_line(Buffer *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "line(data: bytes, keep: bool = False)");
        return NULL;
    }
    int keep = nargs == 2 ? flag(args[1]) : 0;
    if (keep < 0)
        return NULL;
    Words *w = &self->buf;
    if (w->nlines == w->lines_cap) {
        Py_ssize_t cap = w->lines_cap ? w->lines_cap * 2 : 256;
        PyObject **lines = PyMem_RawRealloc(w->lines, (size_t)cap * sizeof(PyObject *));
        if (lines == NULL) {
            self->dropped++;
            Py_RETURN_NONE;
        }
        w->lines = lines;
        w->lines_cap = cap;
    }
    int64_t *p = buffer_reserve(self, 1, keep);
    if (p != NULL) {
        w->lines[w->nlines++] = Py_NewRef(args[0]);
        p[0] = header(ROW_LINE, 1);
        p[1] = (int64_t)(intptr_t)args[0];
    }
    Py_RETURN_NONE;
}

/* The drain's output: a byte buffer written to the file whenever it holds a chunk. */
#define OUT_CHUNK (1 << 20)

typedef struct {
    Buffer *b;
    size_t len;
    int fd;
    int err;     /* errno of a failed write: the rest of the batch is not written */
} Out;

static void
out_flush(Out *o)
{
    size_t done = 0;
    while (done < o->len && !o->err) {
        ssize_t n = write(o->fd, o->b->out + done, o->len - done);
        if (n < 0) {
            if (errno != EINTR)
                o->err = errno;
        }
        else
            done += (size_t)n;
    }
    o->len = 0;
}

/* Room for ``n`` more bytes; false when memory ran out. */
static int
out_room(Out *o, size_t n)
{
    if (o->len + n <= o->b->out_cap)
        return 1;
    out_flush(o);
    if (n <= o->b->out_cap)
        return 1;
    char *out = PyMem_RawRealloc(o->b->out, n);
    if (out == NULL) {
        o->err = ENOMEM;
        return 0;
    }
    o->b->out = out;
    o->b->out_cap = n;
    return 1;
}

static inline char *
put_text(char *p, const char *text, size_t n)
{
    memcpy(p, text, n);
    return p + n;
}

/* A string literal, its length known at compile time. */
#define PUT_LITERAL(p, text) put_text((p), (text), sizeof(text) - 1)

/* "00".."99": integers are written two digits at a time (the writer formats millions). */
static const char DIGIT_PAIRS[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static inline char *
put_int(char *p, int64_t v)
{
    if (v == NIL)
        return PUT_LITERAL(p, "null");
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (v < 0)
        *p++ = '-';
    char digits[24];
    char *d = digits + sizeof digits;
    while (u >= 100) {
        d -= 2;
        memcpy(d, DIGIT_PAIRS + 2 * (u % 100), 2);
        u /= 100;
    }
    if (u >= 10) {
        d -= 2;
        memcpy(d, DIGIT_PAIRS + 2 * u, 2);
    }
    else
        *--d = (char)('0' + u);
    size_t n = (size_t)(digits + sizeof digits - d);
    memcpy(p, d, n);
    return p + n;
}

/* Format and write every event of ``w`` as a line (the GIL is released: no Python here,
 * but reading the bytes of a finished line, which this batch holds a reference to). */
static void
write_lines(Out *o, const Words *w, long long *lines, long long *calls)
{
    Py_ssize_t i = 0;
    while (i < w->len && !o->err) {
        int64_t h = w->words[i];
        int row = (int)(h & 0xff);
        Py_ssize_t fields = (Py_ssize_t)(h >> 8);
        const int64_t *f = w->words + i + 1;
        i += 1 + fields;
        ++*lines;
        if (row == ROW_LINE) {
            PyObject *data = (PyObject *)(intptr_t)f[0];
            size_t n = (size_t)PyBytes_GET_SIZE(data);
            if (!out_room(o, n + 1))
                return;
            memcpy(o->b->out + o->len, PyBytes_AS_STRING(data), n);
            o->b->out[o->len + n] = '\n';
            o->len += n + 1;
            continue;
        }
        if (row == ROW_CALL)
            ++*calls;
        /* 21 bytes hold any int64 or "false"; the rest is the row's fixed text */
        if (!out_room(o, 32 + (size_t)fields * 22))
            return;
        char *p = put_text(o->b->out + o->len, ROWS[row].open, ROWS[row].open_len);
        const char *types = ROWS[row].types;
        for (Py_ssize_t k = 0; k < fields; k++) {
            if (k)
                *p++ = ',';
            char type = *types ? *types++ : 'i';
            if (type == 'b')
                p = f[k] ? PUT_LITERAL(p, "true") : PUT_LITERAL(p, "false");
            else if (type == 'k') {
                *p++ = '"';
                p = put_text(p, KIND_NAMES[f[k]], KIND_LENGTHS[f[k]]);
                *p++ = '"';
            }
            else
                p = put_int(p, f[k]);
        }
        p = put_text(p, ROWS[row].close, ROWS[row].close_len);
        *p++ = '\n';
        o->len = (size_t)(p - o->b->out);
        if (o->len >= OUT_CHUNK)
            out_flush(o);
    }
    if (!o->err)
        out_flush(o);
}

PyDoc_STRVAR(drain_doc,
"drain(fd) -> (lines, calls)\n--\n\n"
"Write every event buffered so far to file descriptor ``fd`` as JSON lines, with the GIL\n"
"released, and return how many lines were written and how many of them were ``call`` rows.\n"
"Events recorded meanwhile wait for the next drain.  Raises OSError if writing failed\n"
"(the batch is then lost; the buffer stays usable).");

static PyObject *
Buffer_drain(Buffer *self, PyObject *arg)
{
    long fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (self->draining) {
        PyErr_SetString(PyExc_RuntimeError, "another thread is draining this buffer");
        return NULL;
    }
    if (self->out == NULL) {
        self->out = PyMem_RawMalloc(OUT_CHUNK + 4096);
        if (self->out == NULL)
            return PyErr_NoMemory();
        self->out_cap = OUT_CHUNK + 4096;
    }
    Words batch = self->buf;
    self->buf = self->spare;
    self->spare = (Words){NULL, 0, 0, NULL, 0, 0};
    self->events = 0;
    self->draining = 1;
    long long lines = 0, calls = 0;
    Out out = {self, 0, (int)fd, 0};
    Py_BEGIN_ALLOW_THREADS
    write_lines(&out, &batch, &lines, &calls);
    Py_END_ALLOW_THREADS
    release_lines(&batch);
    self->spare = batch;
    self->draining = 0;
    if (out.err) {
        errno = out.err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return Py_BuildValue("(LL)", lines, calls);
}

PyDoc_STRVAR(take_lags_doc,
"take_lags() -> (max, mean)\n--\n\n"
"The largest and the mean timer lag (ns) since the last call (0, 0 when no timer ran).");

static PyObject *
Buffer_take_lags(Buffer *self, PyObject *Py_UNUSED(ignored))
{
    long long mean = self->lag_n ? self->lag_sum / self->lag_n : 0;
    PyObject *result = Py_BuildValue("(LL)", self->lag_max, mean);
    self->lag_max = self->lag_sum = self->lag_n = 0;
    return result;
}

static PyMethodDef Buffer_methods[] = {
    {"line", (PyCFunction)(void (*)(void))Buffer_line, METH_FASTCALL, line_doc},
    {"drain", (PyCFunction)Buffer_drain, METH_O, drain_doc},
    {"take_lags", (PyCFunction)Buffer_take_lags, METH_NOARGS, take_lags_doc},
    {NULL}
};

static PyMemberDef Buffer_members[] = {
    {"capacity", Py_T_PYSSIZET, offsetof(Buffer, capacity), Py_READONLY, "most events between drains"},
    {"wake_fd", Py_T_INT, offsetof(Buffer, wake_fd), 0, "written to when half full (-1: none)"},
    {"pending", Py_T_PYSSIZET, offsetof(Buffer, events), Py_READONLY, "events not drained yet"},
    {"dropped", Py_T_LONGLONG, offsetof(Buffer, dropped), Py_READONLY, "events dropped so far"},
    {"iterations", Py_T_LONGLONG, offsetof(Buffer, iterations), Py_READONLY, "polls so far"},
    {"idle_ns", Py_T_LONGLONG, offsetof(Buffer, idle_ns), Py_READONLY, "time spent polling so far"},
    {"poll_since", Py_T_LONGLONG, offsetof(Buffer, poll_since), Py_READONLY,
     "monotonic ns the current poll started, 0 outside the poller"},
    {NULL}
};

static PyTypeObject BufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._native.Buffer",
    .tp_doc = PyDoc_STR(
        "Buffer(capacity, wake_fd=-1): the events recorded since the last drain.\n\n"
        "When it holds capacity / 2 events, a byte is written to ``wake_fd`` (a non-blocking\n"
        "pipe the writer waits on), so that it drains before events have to be dropped."),
    .tp_basicsize = sizeof(Buffer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Buffer_init,
    .tp_dealloc = (destructor)Buffer_dealloc,
    .tp_methods = Buffer_methods,
    .tp_members = Buffer_members,
};

/* -- Probe -------------------------------------------------------------------------------- */

/* Where an attribute lives in objects of one type: Deferreds and DelayedCalls declare
 * ``_trace_id``, ``time`` and ``func`` in ``__slots__``, so they are read and written at a
 * fixed offset instead of through attribute lookup (which costs more than the rest of a
 * hook).  One cache per (attribute, kind of object); the type is held, so that its address
 * is not reused by another type while it is cached. */
typedef struct {
    PyTypeObject *type;
    Py_ssize_t offset;  /* -1: not a plain slot, use getattr/setattr */
} Slot;

/* A call in progress on the reactor thread. */
typedef struct {
    int64_t start;      /* monotonic ns */
    int64_t site;
    int64_t x, y;       /* timer id and lag, fd and NIL, or Deferred id and is_errback */
    PyObject *code;     /* owned: the site cache may forget it meanwhile; NULL when unknown */
    unsigned long long serial;
    int kind;
} Frame;

/* Site cache key: a code object, with either the class whose instance a bound method was
 * called on (``owner``: an inherited method is named after the instance's class, as
 * LineReceiver.dataReceived run for a Chat protocol is Chat.dataReceived) or the instruction
 * offset of a scheduling line (``lasti``, -1 for a callable).  The cache holds a reference to
 * each code object and class in it, so that their addresses are not reused while cached. */
typedef struct {
    PyObject *code;
    PyObject *owner;
    int lasti;
} SiteKey;

/* Site cache: open addressing, SiteKey -> site id, at most SITES_CACHED entries in twice as
 * many slots.  When it is full it forgets them all and fills again: the functions and classes
 * an application makes at run time (a lambda per request from exec, a class per model) are
 * not kept alive by it, and an entry forgotten is only a slow lookup in the Python half the
 * next time (which knows the site: tracer/recorder.py).  4096 is more callables and
 * scheduling lines than a program's hot loop has, and holds at most a few MB of them. */
#define SITES_CACHED 4096
#define SITE_SLOTS (2 * SITES_CACHED)

typedef struct {
    SiteKey key;
    int64_t site;
} SiteEntry;

/* A stack outgrown is kept until the probe goes: wait_for_stall reads the top frame without
 * the GIL, from a stack the loop thread may be replacing.  Each stack is twice the last, from
 * 64 frames: 40 is more than memory holds. */
#define STACKS_RETIRED 40

/* Creation site of recent Deferreds, to name the Deferred of an unhandled failure (it is
 * reported after the Deferred is gone): direct-mapped by id, so the newest ones are kept. */
#define DSITES (1 << 17)

/* The fd of each descriptor, transport or reader handle watched (the Python half tells
 * watch_fd and unwatch_fd), for the fd of a read or write call.  Keyed by the object's
 * address with no reference held, as id() would be: the table keeps nothing alive (a socket
 * the application drops still closes).  Open addressing with linear probing, removal by
 * shifting back the entries after (no tombstones), grown to keep it at most half full.  A dict
 * keyed by id() cost a read call about 370 instructions (an int made, hashed and compared);
 * this costs a few dozen. */
typedef struct {
    uintptr_t key;          /* 0: free */
    int64_t fd;
} FdEntry;

typedef struct {
    FdEntry *slots;
    size_t mask;            /* slots - 1, a power of two less one */
    size_t used;
} FdTable;

#define FD_SLOTS_MIN 64

typedef struct {
    PyObject_HEAD
    PyObject *delegate;     /* the Python half: slow paths (tracer.probe.TraceProbe) */
    Buffer *buffer;
    FdTable fds;
    int64_t t0;
    unsigned long reactor_thread;
    SiteEntry *sites;       /* SITE_SLOTS of them */
    size_t sites_used;
    SiteEntry last_fn;      /* the callable site found last (an entry of the cache) */
    int forgetting;         /* in sites_forget: what its releases run caches nothing */
    Frame *stack;
    Py_ssize_t depth, stack_cap;
    Frame *retired[STACKS_RETIRED];  /* stacks outgrown, kept for wait_for_stall's reads */
    int n_retired;
    unsigned long long serial;
    long long next_deferred, next_timer;
    long long hook_errors;  /* errors the hooks met and kept from the application */
    int reporting;          /* in _hook_failed: errors meanwhile are only counted */
    PyObject *escaping;     /* a KeyboardInterrupt or SystemExit to raise (hook_done) */
    unsigned long escaping_thread;  /* in the hook of this thread */
    Slot deferred_id, timer_id, timer_time, timer_func;
    int64_t (*dsites)[2];   /* [id, site] */
} Probe;

static PyObject *str_time, *str_func, *str_trace_id, *str_fn_site, *str_origin, *str_call_failed,
    *str_hook_failed;

static int
Probe_traverse(Probe *self, visitproc visit, void *arg)
{
    Py_VISIT(self->delegate);
    Py_VISIT(self->buffer);
    Py_VISIT(self->escaping);
    for (size_t i = 0; self->sites != NULL && i < SITE_SLOTS; i++) {
        Py_VISIT(self->sites[i].key.code);
        Py_VISIT(self->sites[i].key.owner);
    }
    return 0;
}

/* Forget every cached site (and the references the cache held).  Releasing a class may run
 * Python code (a weakref callback) that records, and so looks sites up: it finds each slot
 * either still cached or empty, and caches nothing until the table is empty. */
static void
sites_forget(Probe *self)
{
    self->last_fn = (SiteEntry){{NULL, NULL, 0}, 0};
    self->forgetting = 1;
    for (size_t i = 0; self->sites != NULL && i < SITE_SLOTS; i++) {
        SiteKey key = self->sites[i].key;
        self->sites[i] = (SiteEntry){{NULL, NULL, 0}, 0};
        Py_XDECREF(key.code);
        Py_XDECREF(key.owner);
    }
    self->sites_used = 0;
    self->forgetting = 0;
}

static int
Probe_clear(Probe *self)
{
    sites_forget(self);
    Py_CLEAR(self->delegate);
    Py_CLEAR(self->buffer);
    Py_CLEAR(self->escaping);
    return 0;
}

static void
Probe_dealloc(Probe *self)
{
    PyObject_GC_UnTrack(self);
    Probe_clear(self);
    Py_CLEAR(self->deferred_id.type);
    Py_CLEAR(self->timer_id.type);
    Py_CLEAR(self->timer_time.type);
    Py_CLEAR(self->timer_func.type);
    PyMem_RawFree(self->sites);
    while (self->depth > 0)
        Py_XDECREF(self->stack[--self->depth].code);
    PyMem_RawFree(self->stack);
    for (int i = 0; i < self->n_retired; i++)
        PyMem_RawFree(self->retired[i]);
    PyMem_RawFree(self->dsites);
    PyMem_RawFree(self->fds.slots);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Probe_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Probe *self = (Probe *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->sites = PyMem_RawCalloc(SITE_SLOTS, sizeof(SiteEntry));
    self->stack_cap = 64;
    self->stack = PyMem_RawMalloc((size_t)self->stack_cap * sizeof(Frame));
    self->dsites = PyMem_RawCalloc(DSITES, sizeof(*self->dsites));
    self->fds.slots = PyMem_RawCalloc(FD_SLOTS_MIN, sizeof(FdEntry));
    self->fds.mask = FD_SLOTS_MIN - 1;
    if (self->sites == NULL || self->stack == NULL || self->dsites == NULL
            || self->fds.slots == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static int
Probe_init(Probe *self, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"buffer", "t0", "delegate", NULL};
    PyObject *buffer, *delegate;
    long long t0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!LO", names, &BufferType, &buffer, &t0,
                                     &delegate))
        return -1;
    Py_INCREF(delegate);
    Py_XSETREF(self->delegate, delegate);
    Py_INCREF(buffer);
    Py_XSETREF(self->buffer, (Buffer *)buffer);
    self->t0 = t0;
    self->reactor_thread = PyThread_get_thread_ident();
    return 0;
}

/* A hook called before __init__ (or after a failed one) records nothing. */
#define READY_OR_RETURN(self) do { if ((self)->buffer == NULL) Py_RETURN_NONE; } while (0)

static inline size_t
fd_home(const FdTable *t, uintptr_t key)
{
    uintptr_t h = (key >> 4) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29)) & t->mask;
}

/* The slot holding ``key``, or the free slot where it would go. */
static inline FdEntry *
fd_slot(const FdTable *t, uintptr_t key)
{
    size_t i = fd_home(t, key);
    while (t->slots[i].key != 0 && t->slots[i].key != key)
        i = (i + 1) & t->mask;
    return &t->slots[i];
}

/* The fd watched for the object at ``key``, or NIL. */
static inline int64_t
fd_get(const FdTable *t, uintptr_t key)
{
    FdEntry *e = fd_slot(t, key);
    return e->key == key ? e->fd : NIL;
}

static int
fd_put(FdTable *t, uintptr_t key, int64_t fd)
{
    FdEntry *e = fd_slot(t, key);
    if (e->key == key) {
        e->fd = fd;
        return 0;
    }
    if (2 * (t->used + 1) > t->mask + 1) {  /* grow first: at most half full */
        size_t cap = 2 * (t->mask + 1);
        FdEntry *slots = PyMem_RawCalloc(cap, sizeof(FdEntry));
        if (slots == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        FdTable grown = {slots, cap - 1, t->used};
        for (size_t i = 0; i <= t->mask; i++)
            if (t->slots[i].key != 0)
                *fd_slot(&grown, t->slots[i].key) = t->slots[i];
        PyMem_RawFree(t->slots);
        *t = grown;
        e = fd_slot(t, key);
    }
    *e = (FdEntry){key, fd};
    t->used++;
    return 0;
}

static void
fd_remove(FdTable *t, uintptr_t key)
{
    size_t hole = (size_t)(fd_slot(t, key) - t->slots);
    if (t->slots[hole].key != key)
        return;
    t->used--;
    /* Move back each later entry of the run that the hole would cut off from its home. */
    for (size_t i = (hole + 1) & t->mask; t->slots[i].key != 0; i = (i + 1) & t->mask) {
        size_t home = fd_home(t, t->slots[i].key);
        if (((i - home) & t->mask) >= ((i - hole) & t->mask)) {
            t->slots[hole] = t->slots[i];
            hole = i;
        }
    }
    t->slots[hole] = (FdEntry){0, 0};
}

static inline size_t
site_slot(SiteKey key)
{
    uintptr_t h = ((uintptr_t)key.code >> 4) * 0x9E3779B97F4A7C15ull
                  + ((uintptr_t)key.owner >> 4) * 0xC2B2AE3D27D4EB4Full
                  + (uintptr_t)(key.lasti + 1) * 0x85EBCA77u;
    return (size_t)(h ^ (h >> 29)) & (SITE_SLOTS - 1);
}

static inline int
same_key(SiteKey a, SiteKey b)
{
    return a.code == b.code && a.owner == b.owner && a.lasti == b.lasti;
}

/* The cached site, or -1. */
static inline int64_t
site_get(Probe *self, SiteKey key)
{
    size_t i = site_slot(key);
    for (;;) {
        SiteEntry *e = &self->sites[i];
        if (same_key(e->key, key))
            return e->site;
        if (e->key.code == NULL)
            return -1;
        i = (i + 1) & (SITE_SLOTS - 1);
    }
}

/* Cache ``site`` for ``key`` (not cached yet), taking references to its objects; a full
 * cache forgets everything first (SITES_CACHED says why). */
static void
site_put(Probe *self, SiteKey key, int64_t site)
{
    if (self->sites_used >= SITES_CACHED)
        sites_forget(self);
    if (self->forgetting)
        return;
    size_t i = site_slot(key);
    while (self->sites[i].key.code != NULL) {
        if (same_key(self->sites[i].key, key))
            return;
        i = (i + 1) & (SITE_SLOTS - 1);
    }
    Py_INCREF(key.code);
    Py_XINCREF(key.owner);
    self->sites[i] = (SiteEntry){key, site};
    self->sites_used++;
}

/* Keep ``exc`` (stolen) to raise when this thread's hook returns; the first one is kept. */
static void
escape_later(Probe *self, PyObject *exc)
{
    if (self->escaping != NULL) {
        Py_DECREF(exc);
        return;
    }
    self->escaping = exc;
    self->escaping_thread = PyThread_get_thread_ident();
}

/* Whether this thread's hook has something to raise (see hook_failed). */
static inline int
escaping_here(Probe *self)
{
    return self->escaping != NULL && self->escaping_thread == PyThread_get_thread_ident();
}

/* A hook's return: None, or what a signal handler raised meanwhile (see hook_failed). */
static inline PyObject *
hook_done(Probe *self)
{
    if (!escaping_here(self))
        Py_RETURN_NONE;
    give_error(self->escaping);
    self->escaping = NULL;
    return NULL;
}

/* A hook's call into Python failed (a slow path, an attribute read, an allocation): nothing a
 * probe does may change what the application sees, so the error is taken, counted
 * (``Probe.hook_errors``) and handed to the Python half's ``_hook_failed(hook, exc)``, which
 * writes it to the trace, if it has one; if that fails too, the failure is only counted.
 * Errors while reporting one (the report's own hooks) are counted, not reported.
 *
 * What is not an Exception (KeyboardInterrupt, SystemExit: a signal handler ran meanwhile)
 * is the application's, not the hook's: it is kept, and raised when the hook returns
 * (hook_done), as the pure-Python probe lets it pass. */
static void
hook_failed(Probe *self, const char *hook)
{
    PyObject *exc = take_error();
    if (exc != NULL && !PyErr_GivenExceptionMatches(exc, PyExc_Exception)) {
        escape_later(self, exc);
        return;
    }
    self->hook_errors++;
    if (exc == NULL || self->reporting || self->delegate == NULL) {
        Py_XDECREF(exc);
        return;
    }
    self->reporting = 1;
    PyObject *report = PyObject_GetAttr(self->delegate, str_hook_failed);
    PyObject *name = report != NULL ? PyUnicode_FromString(hook) : NULL;
    PyObject *result = name != NULL ? PyObject_CallFunctionObjArgs(report, name, exc, NULL) : NULL;
    if (result == NULL) {
        PyObject *error = take_error();
        if (error != NULL && !PyErr_GivenExceptionMatches(error, PyExc_Exception))
            escape_later(self, error);
        else
            Py_XDECREF(error);
    }
    Py_XDECREF(result);
    Py_XDECREF(name);
    Py_XDECREF(report);
    Py_DECREF(exc);
    self->reporting = 0;
}

/* A slow-path answer from the Python half: (site, extra), where extra is a code object or
 * a flag (borrowed from ``result``).  A failed call, or an answer of another shape, is a
 * hook error and gives site 0. */
static int64_t
slow_site(Probe *self, const char *hook, PyObject *result, PyObject **extra)
{
    *extra = NULL;
    if (result == NULL) {
        hook_failed(self, hook);
        return 0;
    }
    if (!PyTuple_Check(result) || PyTuple_GET_SIZE(result) != 2) {
        PyErr_Format(PyExc_TypeError, "a slow path returned %.100s, not (site, extra)",
                     Py_TYPE(result)->tp_name);
        hook_failed(self, hook);
        return 0;
    }
    int64_t site = int_or_nil(PyTuple_GET_ITEM(result, 0));
    *extra = PyTuple_GET_ITEM(result, 1);
    return site == NIL ? 0 : site;
}

/* Site of a callable; ``*code`` is its code object (borrowed from ``f``) or NULL.  Functions and bound methods are looked up here; anything else asks the Python
 * half (``_fn_site(f) -> (site, code or None)``). */
static inline ALWAYS_INLINE int64_t
fn_site(Probe *self, const char *hook, PyObject *f, PyObject **code)
{
    PyObject *func = f, *owner = NULL;
    if (PyMethod_Check(f)) {
        func = PyMethod_GET_FUNCTION(f);
        PyObject *bound = PyMethod_GET_SELF(f);
        owner = PyType_Check(bound) ? bound : (PyObject *)Py_TYPE(bound);  /* classmethod */
    }
    PyObject *fcode = PyFunction_Check(func) ? PyFunction_GET_CODE(func) : NULL;
    SiteKey key = {fcode, owner, -1};
    if (fcode != NULL) {
        /* the same callback as last time (a chain of like callbacks, a busy protocol) */
        if (same_key(key, self->last_fn.key)) {
            *code = fcode;
            return self->last_fn.site;
        }
        int64_t site = site_get(self, key);
        if (site >= 0) {
            *code = fcode;
            self->last_fn = (SiteEntry){key, site};
            return site;
        }
    }
    PyObject *result = PyObject_CallMethodOneArg(self->delegate, str_fn_site, f);
    PyObject *extra;
    int64_t site = slow_site(self, hook, result, &extra);
    *code = extra != NULL && PyCode_Check(extra) ? extra : NULL;
    if (fcode != NULL && *code == fcode && site > 0)
        site_put(self, key, site);
    Py_XDECREF(result);
    return site;
}

/* The frame two up from a hook (the line that called callLater or Deferred()), as the cache
 * key: its code object and instruction offset.  ``up`` is 1 for a hook called from Python (a
 * wrapper between the hook and that line), 0 for one called by a C stand-in (the line's frame
 * is the current one).  ``frame`` is its frame object when one was
 * made on the way, else NULL (each a new reference). */
typedef struct {
    PyCodeObject *code;
    int lasti;
    PyFrameObject *frame;
} Caller;

/* On CPython 3.11 this reads the interpreter's frames directly: asking for a frame object
 * (PyEval_GetFrame) creates one, for this frame and the one above, and on 3.11 that costs
 * more than the rest of the hook.  From 3.12 there is no public way to the interpreter's
 * frames but frame objects.  False when there is no such frame (or no memory for it). */
static inline int
caller_key(Caller *caller, int up)
{
#ifdef CPYTHON_311_INTERNALS
    _PyInterpreterFrame *frame = PyThreadState_Get()->cframe->current_frame;
    for (int i = 0; i <= up && frame != NULL; i++) {
        if (i)
            frame = frame->previous;
        while (frame != NULL && _PyFrame_IsIncomplete(frame))
            frame = frame->previous;
    }
    if (frame == NULL)
        return 0;
    *caller = (Caller){(PyCodeObject *)Py_NewRef(frame->f_code),
                       _PyInterpreterFrame_LASTI(frame), NULL};
    return 1;
#else
    PyFrameObject *frame = PyEval_GetFrame();  /* borrowed */
    PyFrameObject *back = frame == NULL ? NULL : up ? PyFrame_GetBack(frame) : (PyFrameObject *)Py_NewRef(frame);
    if (back == NULL)
        return 0;
    *caller = (Caller){PyFrame_GetCode(back), PyFrame_GetLasti(back), back};
    return 1;
#endif
}

/* Site of the line that called the hook's caller (callLater, Deferred()): the frame two up
 * from the hook, as sys._getframe(2) in a Python hook.  Cached per (code, instruction) when
 * the Python half says the answer does not depend on the frames further out
 * (``_origin(frame) -> (site, cacheable)``: the line is outside the reactor package). */
static int64_t
caller_site(Probe *self, const char *hook, int up)
{
    Caller caller;
    if (!caller_key(&caller, up)) {
        if (PyErr_Occurred())
            hook_failed(self, hook);
        return 0;
    }
    SiteKey key = {(PyObject *)caller.code, NULL, caller.lasti};
    int64_t site = site_get(self, key);
    if (site < 0) {
        /* A miss: the Python half needs the frame object (made here, once per line). */
        if (caller.frame == NULL) {
            PyFrameObject *frame = PyEval_GetFrame();
            caller.frame = frame == NULL ? NULL
                         : up ? PyFrame_GetBack(frame) : (PyFrameObject *)Py_NewRef(frame);
        }
        site = 0;
        if (caller.frame != NULL) {
            PyObject *result = PyObject_CallMethodOneArg(self->delegate, str_origin,
                                                         (PyObject *)caller.frame);
            PyObject *cacheable;
            site = slow_site(self, hook, result, &cacheable);
            if (cacheable == Py_True && site > 0)
                site_put(self, key, site);
            Py_XDECREF(result);
        }
        else if (PyErr_Occurred())  /* no memory for the frame object */
            hook_failed(self, hook);
    }
    Py_DECREF(caller.code);
    Py_XDECREF(caller.frame);
    return site;
}

/* ``name`` found on ``type`` or a base (not on an instance): a new reference, or NULL (no
 * error set) when it is not there. */
static PyObject *
type_attribute(PyTypeObject *type, PyObject *name)
{
#ifdef CPYTHON_311_INTERNALS
    return Py_XNewRef(_PyType_Lookup(type, name));
#else
    PyObject *mro = type->tp_mro;
    for (Py_ssize_t i = 0; mro != NULL && i < PyTuple_GET_SIZE(mro); i++) {
        PyObject *dict = PyType_GetDict((PyTypeObject *)PyTuple_GET_ITEM(mro, i));
        PyObject *value = dict != NULL ? PyDict_GetItemWithError(dict, name) : NULL;
        Py_XINCREF(value);
        Py_XDECREF(dict);
        if (value != NULL)
            return value;
        PyErr_Clear();  /* a string key's lookup cannot fail but on memory */
    }
    return NULL;
#endif
}

static inline Py_ssize_t
slot_offset(Slot *cache, PyObject *obj, PyObject *name)
{
    PyTypeObject *type = Py_TYPE(obj);
    if (type == cache->type)
        return cache->offset;
    PyObject *descr = type_attribute(type, name);
    Py_ssize_t offset = -1;
    if (descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type == Py_T_OBJECT_EX)
            offset = member->offset;
    }
    Py_XDECREF(descr);
    Py_INCREF(type);
    Py_XSETREF(cache->type, type);
    cache->offset = offset;
    return offset;
}

/* ``obj.<name>`` as a new reference, or NULL when it is missing (or reading it raised: a
 * hook error). */
static inline PyObject *
slot_get(Probe *self, const char *hook, Slot *cache, PyObject *obj, PyObject *name)
{
    Py_ssize_t offset = slot_offset(cache, obj, name);
    if (offset >= 0) {
        PyObject *value = *(PyObject **)((char *)obj + offset);
        Py_XINCREF(value);
        return value;
    }
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError))
            PyErr_Clear();
        else
            hook_failed(self, hook);
    }
    return value;
}

/* ``obj.<name> = int(value)``. */
static void
slot_set_int(Probe *self, const char *hook, Slot *cache, PyObject *obj, PyObject *name,
             int64_t value)
{
    PyObject *number = PyLong_FromLongLong(value);
    if (number == NULL) {
        hook_failed(self, hook);
        return;
    }
    Py_ssize_t offset = slot_offset(cache, obj, name);
    if (offset >= 0) {
        PyObject **slot = (PyObject **)((char *)obj + offset);
        Py_XSETREF(*slot, number);
        return;
    }
    if (PyObject_SetAttr(obj, name, number) < 0)
        hook_failed(self, hook);
    Py_DECREF(number);
}

/* An object's ``_trace_id``, giving it one first if it has none (created before tracing). */
static inline ALWAYS_INLINE int64_t
trace_id(Probe *self, const char *hook, Slot *cache, PyObject *obj, long long *counter)
{
    PyObject *value = slot_get(self, hook, cache, obj, str_trace_id);
    int64_t id = int_or_nil(value);
    Py_XDECREF(value);
    if (id == NIL) {
        id = ++*counter;
        slot_set_int(self, hook, cache, obj, str_trace_id, id);
    }
    return id;
}

/* ``obj.time`` (a due time in seconds on the monotonic clock) in ns, or NIL. */
static inline int64_t
due_ns(Probe *self, const char *hook, Slot *cache, PyObject *obj)
{
    PyObject *value = slot_get(self, hook, cache, obj, str_time);
    if (value == NULL)
        return NIL;
    double due = PyFloat_AsDouble(value);
    Py_DECREF(value);
    if (due == -1.0 && PyErr_Occurred()) {
        hook_failed(self, hook);
        return NIL;
    }
    return (int64_t)(due * 1e9);
}

/* A flag argument of a hook; one whose truth cannot be told is false (a hook error). */
static inline int
hook_flag(Probe *self, const char *hook, PyObject *value)
{
    int truth = flag(value);
    if (truth < 0) {
        hook_failed(self, hook);
        return 0;
    }
    return truth;
}

static inline int
push(Probe *self, int64_t start, int kind, PyObject *code, int64_t site, int64_t x, int64_t y)
{
    if (self->depth == self->stack_cap) {
        Frame *stack = self->n_retired < STACKS_RETIRED
                       ? PyMem_RawMalloc((size_t)self->stack_cap * 2 * sizeof(Frame)) : NULL;
        if (stack == NULL)
            return -1;
        memcpy(stack, self->stack, (size_t)self->depth * sizeof(Frame));
        self->retired[self->n_retired++] = self->stack;
        /* The stack before its size (wait_for_stall reads them in the other order). */
        __atomic_store_n(&self->stack, stack, __ATOMIC_RELEASE);
        __atomic_store_n(&self->stack_cap, self->stack_cap * 2, __ATOMIC_RELEASE);
    }
    self->stack[self->depth++] = (Frame){start, site, x, y, Py_XNewRef(code), ++self->serial,
                                         kind};
    return 0;
}

static inline int
on_reactor_thread(Probe *self)
{
    return PyThread_get_thread_ident() == self->reactor_thread;
}

static inline int
kind_of(PyObject *kind)
{
    for (int k = 0; k < K_DEFERRED; k++)
        if (kind == kind_strings[k])
            return k;
    for (int k = 0; k < K_DEFERRED; k++)
        if (PyUnicode_Check(kind) && PyUnicode_Compare(kind, kind_strings[k]) == 0)
            return k;
    PyErr_Clear();
    return K_OTHER;
}

#define CHECK_NARGS_BETWEEN(name, least, most) \
    if (nargs < (least) || nargs > (most)) { \
        if ((least) == (most)) \
            PyErr_Format(PyExc_TypeError, name "() takes %d arguments (%zd given)", \
                         (least), nargs); \
        else \
            PyErr_Format(PyExc_TypeError, name "() takes %d or %d arguments (%zd given)", \
                         (least), (most), nargs); \
        return NULL; \
    }
#define CHECK_NARGS(name, n) CHECK_NARGS_BETWEEN(name, n, n)

/* -- the hooks (reactor/_instrument.py documents when each one is called) -- */

static PyObject *
Probe_poll_begin(Probe *self, PyObject *timeout)
{
    READY_OR_RETURN(self);
    self->buffer->poll_since = now_ns();
    Py_RETURN_NONE;
}

/* The poll returned ``ready``: the wait is idle time, and a ``poll`` row lists each
 * descriptor ready with its mode bits (1 read, 2 write).  ``ready`` is a selector's [(key,
 * mask)], the key a namedtuple whose item 1 is the fd, when ``reads`` is negative; else poll's
 * or epoll's [(fd, events)], whose ``reads`` and ``writes`` bits mean each mode.  Exact ints
 * only: reading them runs no Python code while the event is half written. */
static PyObject *
poll_ended(Probe *self, PyObject *ready, long reads, long writes)
{
    READY_OR_RETURN(self);
    Buffer *b = self->buffer;
    int64_t t = now_ns();
    int64_t wait = b->poll_since ? t - b->poll_since : 0;
    b->poll_since = 0;
    b->idle_ns += wait;
    b->iterations++;
    Py_ssize_t n = PyList_Check(ready) ? PyList_GET_SIZE(ready) : 0;
    if (n == 0)
        Py_RETURN_NONE;
    int64_t *p = buffer_reserve(b, 2 + 2 * n, 0);
    if (p == NULL)
        Py_RETURN_NONE;
    p[0] = header(ROW_POLL, 2 + 2 * n);
    p[1] = t - self->t0;
    p[2] = wait;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(ready, i);
        PyObject *first = PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2
                          ? PyTuple_GET_ITEM(pair, 0) : NULL;
        PyObject *fd = first;
        if (reads < 0)
            fd = first != NULL && PyTuple_Check(first) && PyTuple_GET_SIZE(first) > 1
                 ? PyTuple_GET_ITEM(first, 1) : NULL;
        PyObject *bits = first != NULL ? PyTuple_GET_ITEM(pair, 1) : NULL;
        int ok = fd != NULL && PyLong_CheckExact(fd) && PyLong_CheckExact(bits);
        long long mask = ok ? PyLong_AsLongLong(bits) : NIL;
        if (ok && reads >= 0)
            mask = ((mask & reads) ? 1 : 0) | ((mask & writes) ? 2 : 0);
        p[3 + 2 * i] = ok ? PyLong_AsLongLong(fd) : NIL;
        p[4 + 2 * i] = mask;
    }
    if (PyErr_Occurred())  /* an fd or mask beyond 64 bits */
        PyErr_Clear();
    Py_RETURN_NONE;
}

static PyObject *
Probe_poll_end(Probe *self, PyObject *ready)
{
    return poll_ended(self, ready, -1, 0);
}

PyDoc_STRVAR(poll_end_fds_doc,
"poll_end_fds(reads, writes, ready)\n--\n\n"
"poll_end for what poll or epoll returned, ``ready = [(fd, events)]``: the ``reads`` bits of\n"
"an fd's events make it ready to read, the ``writes`` bits to write.  The masks come first,\n"
"so that functools.partial can bind them (a poller calls it with ``ready`` alone).");

static PyObject *
Probe_poll_end_fds(Probe *self, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS("poll_end_fds", 3);
    long reads = PyLong_AsLong(args[0]), writes = PyLong_AsLong(args[1]);
    if (PyErr_Occurred())
        return NULL;
    if (reads < 0 || writes < 0) {
        PyErr_SetString(PyExc_ValueError, "poll_end_fds(): reads and writes are bit masks");
        return NULL;
    }
    return poll_ended(self, args[2], reads, writes);
}

/* A loop call begins: its frame goes on the stack (timed from here). */
static inline void
begin_call(Probe *self, const char *hook, int kind, PyObject *f, PyObject *source)
{
    PyObject *code;
    int64_t site = fn_site(self, hook, f, &code);
    int64_t x = NIL, y = NIL, t;
    if (kind == K_TIMER) {
        int64_t due = due_ns(self, hook, &self->timer_time, source);
        PyObject *id = slot_get(self, hook, &self->timer_id, source, str_trace_id);
        x = int_or_nil(id);
        Py_XDECREF(id);
        t = now_ns();
        if (due != NIL) {
            y = t > due ? t - due : 0;
            Buffer *b = self->buffer;
            if (y > b->lag_max)
                b->lag_max = y;
            b->lag_sum += y;
            b->lag_n++;
        }
    }
    else {
        if (kind == K_READ || kind == K_WRITE) {
            x = fd_get(&self->fds, (uintptr_t)source);
        }
        t = now_ns();
    }
    if (push(self, t, kind, code, site, x, y) < 0)
        self->buffer->dropped++;
}

/* Record a row: its kind, its time (monotonic ns, made relative here) and ``n`` more fields.
 * Dropped (and counted) when the buffer is full. */
static inline void
emit(Probe *self, int row, int64_t t, Py_ssize_t n, const int64_t *fields)
{
    int64_t *p = buffer_reserve(self->buffer, n + 1, 0);
    if (p != NULL) {
        p[0] = header(row, n + 1);
        p[1] = t - self->t0;
        memcpy(p + 2, fields, (size_t)n * sizeof(int64_t));
    }
}

/* The innermost loop call ended; ``exc`` is what escaped it, or NULL. */
static void
end_call(Probe *self, const char *hook, PyObject *exc)
{
    if (self->depth == 0)  /* tracing started inside a callback */
        return;
    int64_t t = now_ns();
    Frame f = self->stack[--self->depth];
    if (exc == NULL) {
        emit(self, ROW_CALL, t, 6, (int64_t[]){f.kind, f.site, t - f.start, self->depth, f.x, f.y});
        Py_XDECREF(f.code);
        return;
    }
    /* A call that raised is written in object form by the Python half (the exception's name
     * is application text). */
    PyObject *when = PyLong_FromLongLong(t - self->t0);
    PyObject *site = PyLong_FromLongLong(f.site);
    PyObject *dur = PyLong_FromLongLong(t - f.start);
    PyObject *depth = PyLong_FromSsize_t(self->depth);
    PyObject *x = f.x == NIL ? Py_NewRef(Py_None) : PyLong_FromLongLong(f.x);
    PyObject *lag = f.y == NIL ? Py_NewRef(Py_None) : PyLong_FromLongLong(f.y);
    PyObject *result = NULL;
    if (when && site && dur && depth && x && lag)
        result = PyObject_CallMethodObjArgs(self->delegate, str_call_failed, when,
                                            kind_strings[f.kind], site, dur, depth, x, lag,
                                            exc, NULL);
    Py_XDECREF(when);
    Py_XDECREF(site);
    Py_XDECREF(dur);
    Py_XDECREF(depth);
    Py_XDECREF(x);
    Py_XDECREF(lag);
    if (result == NULL)
        hook_failed(self, hook);
    Py_XDECREF(result);
    Py_XDECREF(f.code);
}

static PyObject *
Probe_call_begin(Probe *self, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS("call_begin", 3);
    READY_OR_RETURN(self);
    begin_call(self, "call_begin", kind_of(args[0]), args[1], args[2]);
    return hook_done(self);
}

static PyObject *
Probe_call_end(Probe *self, PyObject *exc)
{
    READY_OR_RETURN(self);
    end_call(self, "call_end", exc == Py_None ? NULL : exc);
    return hook_done(self);
}

/* call_begin, ``f(*fargs, **kw)``, call_end, in one step: no Python frame around user code.
 * ``kw`` is NULL or a dict. */
static PyObject *
run_traced(Probe *self, int kind, PyObject *f, PyObject *source, PyObject *fargs, PyObject *kw)
{
    if (self->buffer == NULL)
        return PyObject_Call(f, fargs, kw);
    begin_call(self, "run_call", kind, f, source);
    PyObject *result = PyObject_Call(f, fargs, kw);
    if (result != NULL) {
        end_call(self, "run_call", NULL);
        if (escaping_here(self)) {  /* a signal handler raised while the call was recorded */
            Py_DECREF(result);
            return hook_done(self);
        }
        return result;
    }
    /* The application's exception passes through as it is: the probe's own errors while it
     * records the call are hook errors, never in its place.  Only what a signal handler
     * raised meanwhile goes before it, with it as its context (as in an except block). */
    PyObject *exc = take_error();
    end_call(self, "run_call", exc != NULL ? exc : Py_None);
    if (escaping_here(self) && exc != NULL) {
        PyException_SetContext(self->escaping, exc);
        return hook_done(self);
    }
    if (exc != NULL)
        give_error(exc);
    return NULL;
}

static PyObject *
Probe_run_call(Probe *self, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS("run_call", 5);
    PyObject *fargs = args[3], *kw = args[4];
    if (!PyTuple_Check(fargs)) {
        PyErr_SetString(PyExc_TypeError, "run_call(): args must be a tuple");
        return NULL;
    }
    if (kw == Py_None || (PyDict_Check(kw) && PyDict_GET_SIZE(kw) == 0))
        kw = NULL;
    return run_traced(self, kind_of(args[0]), args[2], args[1], fargs, kw);
}

/* timer_scheduled: ``up`` as in caller_site. */
static void
note_scheduled(Probe *self, PyObject *call, int up)
{
    const char *hook = "timer_scheduled";
    int64_t site = caller_site(self, hook, up);
    PyObject *func = slot_get(self, hook, &self->timer_func, call, str_func);
    PyObject *code;
    int64_t fn = func != NULL ? fn_site(self, hook, func, &code) : 0;
    Py_XDECREF(func);
    int64_t due = due_ns(self, hook, &self->timer_time, call);
    int64_t id = ++self->next_timer;
    slot_set_int(self, hook, &self->timer_id, call, str_trace_id, id);
    int64_t t = now_ns();
    emit(self, ROW_TIMER, t, 4, (int64_t[]){id, site, fn, due == NIL ? NIL : due - self->t0});
}

static PyObject *
Probe_timer_scheduled(Probe *self, PyObject *call)
{
    READY_OR_RETURN(self);
    note_scheduled(self, call, 1);
    return hook_done(self);
}

static PyObject *
Probe_deferred_created(Probe *self, PyObject *d)
{
    READY_OR_RETURN(self);
    const char *hook = "deferred_created";
    int64_t id = ++self->next_deferred;
    slot_set_int(self, hook, &self->deferred_id, d, str_trace_id, id);
    int64_t site = caller_site(self, hook, 1);
    self->dsites[id & (DSITES - 1)][0] = id;
    self->dsites[id & (DSITES - 1)][1] = site;
    int64_t t = now_ns();
    emit(self, ROW_DNEW, t, 2, (int64_t[]){id, site});
    return hook_done(self);
}

static PyObject *
Probe_deferred_callbacks_added(Probe *self, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS("deferred_callbacks_added", 3);
    READY_OR_RETURN(self);
    const char *hook = "deferred_callbacks_added";
    PyObject *code;
    int64_t cb = args[1] == Py_None ? 0 : fn_site(self, hook, args[1], &code);
    int64_t eb = args[2] == Py_None ? 0 : fn_site(self, hook, args[2], &code);
    int64_t id = trace_id(self, hook, &self->deferred_id, args[0], &self->next_deferred);
    int64_t t = now_ns();
    emit(self, ROW_DADD, t, 3, (int64_t[]){id, cb, eb});
    return hook_done(self);
}

/* Deferred ``id`` was fired at ``t`` (``failed``: with a failure): its ``dfire`` row. */
static inline void
record_fired(Probe *self, int64_t id, int failed, int64_t t)
{
    emit(self, ROW_DFIRE, t, 2, (int64_t[]){id, failed});
}

static PyObject *
Probe_deferred_fired(Probe *self, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS("deferred_fired", 2);
    READY_OR_RETURN(self);
    const char *hook = "deferred_fired";
    int64_t id = trace_id(self, hook, &self->deferred_id, args[0], &self->next_deferred);
    int failed = hook_flag(self, hook, args[1]);
    record_fired(self, id, failed, now_ns());
    return hook_done(self);
}

/* The Deferred callback on top of the stack, if it is one of Deferred ``id``, ends at ``t``
 * (its ``dcall`` is recorded; ``failed``: the chain went on on the failure path). */
static inline void
end_deferred_callback(Probe *self, int64_t id, int64_t t, int failed)
{
    Frame *f = self->depth ? &self->stack[self->depth - 1] : NULL;
    if (f == NULL || f->kind != K_DEFERRED || f->x != id)
        return;
    self->depth--;
    PyObject *code = f->code;
    emit(self, ROW_DCALL, t, 6, (int64_t[]){id, f->site, t - f->start, self->depth, f->y, failed});
    Py_XDECREF(code);
}

/* A callback of ``d`` begins, and the one of ``d`` before it in this pass (if any) has
 * returned: one clock reading for both.  A Deferred fired in another thread (a pool thread
 * calling d.callback) runs its callbacks there: they do not hold the loop, so they are
 * neither on the loop's stack nor timed.  With ``fired`` (the optional last argument of
 * this hook and of deferred_callback_end) ``d`` was fired just now and this is the first hook
 * of its pass: it records the firing as well, in any thread, as deferred_fired would have. */
static PyObject *
Probe_deferred_callback_begin(Probe *self, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS_BETWEEN("deferred_callback_begin", 3, 4);
    READY_OR_RETURN(self);
    const char *hook = "deferred_callback_begin";
    int fired = nargs == 4 && hook_flag(self, hook, args[3]);
    int on_loop = on_reactor_thread(self);
    if (!fired && !on_loop)
        Py_RETURN_NONE;
    PyObject *code = NULL;
    int64_t site = on_loop ? fn_site(self, hook, args[1], &code) : 0;
    int64_t id = trace_id(self, hook, &self->deferred_id, args[0], &self->next_deferred);
    int is_errback = hook_flag(self, hook, args[2]);
    int64_t t = now_ns();
    if (fired)
        record_fired(self, id, is_errback, t);
    if (!on_loop)
        return hook_done(self);
    end_deferred_callback(self, id, t, is_errback);
    if (push(self, t, K_DEFERRED, code, site, id, is_errback) < 0)
        self->buffer->dropped++;
    return hook_done(self);
}

static PyObject *
Probe_deferred_callback_end(Probe *self, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS_BETWEEN("deferred_callback_end", 2, 3);
    READY_OR_RETURN(self);
    const char *hook = "deferred_callback_end";
    int fired = nargs == 3 && hook_flag(self, hook, args[2]);
    int timed = self->depth != 0 && on_reactor_thread(self);  /* a callback may be open */
    if (!fired && !timed)
        Py_RETURN_NONE;
    int failed = hook_flag(self, hook, args[1]);
    int64_t id = trace_id(self, hook, &self->deferred_id, args[0], &self->next_deferred);
    int64_t t = now_ns();
    if (fired)
        record_fired(self, id, failed, t);
    if (timed)
        end_deferred_callback(self, id, t, failed);
    return hook_done(self);
}

/* The tp_dealloc of the small GC types below (each one's tp_clear drops its references). */
static void
gc_object_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    Py_TYPE(self)->tp_clear(self);
    PyObject_GC_Del(self);
}

/* -- Deferred callbacks timed in C -------------------------------------------------------- */

/* The Twisted adapter adds, in place of each Deferred callback ``f``, a callable that times
 * it: deferred_callback_begin, ``f``, deferred_callback_end.  As a Python closure that costs
 * a Python frame per callback run, about 40% of what tracing adds to a Deferred; this one
 * runs no Python code of its own.  What needs the adapter's bookkeeping (which Deferred a
 * failure was left in, which one waits on which) is rare and stays in Python: ``failed(d,
 * exc)`` when ``f`` raised, ``settled(d, result)`` when it returned a Failure or a Deferred
 * (either ends the callback's frame itself). */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Probe *probe;
    PyObject *failure, *deferred;   /* Twisted's Failure and Deferred classes */
    PyObject *settled, *failed;
} DeferredTimer;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    DeferredTimer *timer;
    PyObject *d, *f;
    int is_errback;
} TimedCallback;

static PyTypeObject TimedCallbackType;

/* ``f`` raised ``exc`` (stolen): the adapter is told, and ``exc`` raised on as it was (an
 * error of ``failed`` itself goes first, with ``exc`` as its context). */
static PyObject *
timed_callback_raised(TimedCallback *self, PyObject *exc)
{
    PyObject *args[2] = {self->d, exc};
    PyObject *told = PyObject_Vectorcall(self->timer->failed, args, 2, NULL);
    if (told == NULL) {
        PyObject *error = take_error();
        PyException_SetContext(error, exc);
        give_error(error);
        return NULL;
    }
    Py_DECREF(told);
    give_error(exc);
    return NULL;
}

static PyObject *
TimedCallback_call(TimedCallback *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Probe *probe = self->timer->probe;
    PyObject *begin_args[3] = {self->d, self->f, self->is_errback ? Py_True : Py_False};
    PyObject *done = Probe_deferred_callback_begin(probe, begin_args, 3);
    if (done == NULL)
        return NULL;
    Py_DECREF(done);
    PyObject *result = PyObject_Vectorcall(self->f, args, nargsf, kwnames);
    if (result == NULL)
        return timed_callback_raised(self, take_error());
    PyTypeObject *type = Py_TYPE(result);
    if (PyType_IsSubtype(type, (PyTypeObject *)self->timer->failure)
            || PyType_IsSubtype(type, (PyTypeObject *)self->timer->deferred)) {
        PyObject *settled_args[2] = {self->d, result};
        PyObject *settled = PyObject_Vectorcall(self->timer->settled, settled_args, 2, NULL);
        Py_DECREF(result);
        return settled;
    }
    PyObject *end_args[2] = {self->d, Py_False};
    done = Probe_deferred_callback_end(probe, end_args, 2);
    if (done == NULL) {  /* a signal handler raised meanwhile */
        Py_DECREF(result);
        return NULL;
    }
    Py_DECREF(done);
    return result;
}

static int
TimedCallback_traverse(TimedCallback *self, visitproc visit, void *arg)
{
    Py_VISIT(self->timer);
    Py_VISIT(self->d);
    Py_VISIT(self->f);
    return 0;
}

static int
TimedCallback_clear(TimedCallback *self)
{
    Py_CLEAR(self->timer);
    Py_CLEAR(self->d);
    Py_CLEAR(self->f);
    return 0;
}

static PyObject *
TimedCallback_repr(TimedCallback *self)
{
    return PyUnicode_FromFormat("<timed %s %R>", self->is_errback ? "errback" : "callback",
                                self->f);
}

static PyMemberDef TimedCallback_members[] = {
    {"callback", Py_T_OBJECT_EX, offsetof(TimedCallback, f), Py_READONLY,
     "the program's callback (or errback) this times"},
    {NULL}
};

static PyTypeObject TimedCallbackType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._native.TimedCallback",
    .tp_doc = PyDoc_STR("A Deferred callback, timed (made by a DeferredTimer)."),
    .tp_basicsize = sizeof(TimedCallback),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(TimedCallback, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_repr = (reprfunc)TimedCallback_repr,
    .tp_dealloc = gc_object_dealloc,
    .tp_traverse = (traverseproc)TimedCallback_traverse,
    .tp_clear = (inquiry)TimedCallback_clear,
    .tp_members = TimedCallback_members,
};

/* timer(d, f, is_errback): ``f`` timed as a callback (errback) of ``d``. */
static PyObject *
DeferredTimer_call(DeferredTimer *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 3 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "DeferredTimer takes 3 positional arguments");
        return NULL;
    }
    int is_errback = PyObject_IsTrue(args[2]);
    if (is_errback < 0)
        return NULL;
    TimedCallback *timed = PyObject_GC_New(TimedCallback, &TimedCallbackType);
    if (timed == NULL)
        return NULL;
    timed->vectorcall = (vectorcallfunc)TimedCallback_call;
    timed->timer = (DeferredTimer *)Py_NewRef(self);
    timed->d = Py_NewRef(args[0]);
    timed->f = Py_NewRef(args[1]);
    timed->is_errback = is_errback;
    PyObject_GC_Track(timed);
    return (PyObject *)timed;
}

PyDoc_STRVAR(callback_of_doc,
"callback_of(f) -> callback or None\n--\n\n"
"The program's callback that ``f`` times, if ``f`` is a timed callback, else None.");

static PyObject *
DeferredTimer_callback_of(DeferredTimer *self, PyObject *f)
{
    if (!Py_IS_TYPE(f, &TimedCallbackType))
        Py_RETURN_NONE;
    return Py_NewRef(((TimedCallback *)f)->f);
}

/* Deferred.addCallback as the Twisted adapter replaces it (from Twisted 24.7, whose
 * addCallback does not go through addCallbacks): ``deferred_callbacks_added``, then Twisted's
 * own addCallback given the timed callback.  As a Python function it was a frame per callback
 * added, ten per Deferred of the bench's deferred workload.  A method descriptor, as
 * HandleRunner is. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    DeferredTimer *timer;
    PyObject *add_callback;     /* Twisted's Deferred.addCallback */
} CallbackAdder;

#define ADDER_STACK 8

static PyObject *
CallbackAdder_call(CallbackAdder *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "addCallback(deferred, callback, *args, **kw)");
        return NULL;
    }
    PyObject *added_args[3] = {args[0], args[1], Py_None};
    PyObject *done = Probe_deferred_callbacks_added(self->timer->probe, added_args, 3);
    if (done == NULL)  /* a signal handler raised meanwhile */
        return NULL;
    Py_DECREF(done);
    PyObject *timer_args[3] = {args[0], args[1], Py_False};
    PyObject *timed = DeferredTimer_call(self->timer, timer_args, 3, NULL);
    if (timed == NULL)
        return NULL;
    Py_ssize_t total = nargs + nkw;
    PyObject *small[ADDER_STACK];
    PyObject **stack = total <= ADDER_STACK ? small : PyMem_Malloc((size_t)total * sizeof(PyObject *));
    if (stack == NULL) {
        Py_DECREF(timed);
        return PyErr_NoMemory();
    }
    stack[0] = args[0];
    stack[1] = timed;
    for (Py_ssize_t i = 2; i < total; i++)
        stack[i] = args[i];
    PyObject *result = PyObject_Vectorcall(self->add_callback, stack, (size_t)nargs, kwnames);
    if (stack != small)
        PyMem_Free(stack);
    Py_DECREF(timed);
    return result;
}

static PyObject *
CallbackAdder_get(PyObject *self, PyObject *obj, PyObject *Py_UNUSED(type))
{
    if (obj == NULL || obj == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

static int
CallbackAdder_traverse(CallbackAdder *self, visitproc visit, void *arg)
{
    Py_VISIT(self->timer);
    Py_VISIT(self->add_callback);
    return 0;
}

static int
CallbackAdder_clear(CallbackAdder *self)
{
    Py_CLEAR(self->timer);
    Py_CLEAR(self->add_callback);
    return 0;
}

static PyObject *
CallbackAdder_repr(CallbackAdder *self)
{
    return PyUnicode_FromFormat("<traced %R>", self->add_callback);
}

static PyTypeObject CallbackAdderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._native.CallbackAdder",
    .tp_doc = PyDoc_STR("Made by DeferredTimer.adder(add_callback): Deferred.addCallback, traced."),
    .tp_basicsize = sizeof(CallbackAdder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_vectorcall_offset = offsetof(CallbackAdder, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = CallbackAdder_get,
    .tp_repr = (reprfunc)CallbackAdder_repr,
    .tp_dealloc = gc_object_dealloc,
    .tp_traverse = (traverseproc)CallbackAdder_traverse,
    .tp_clear = (inquiry)CallbackAdder_clear,
};

PyDoc_STRVAR(adder_doc,
"adder(add_callback) -> CallbackAdder\n--\n\n"
"Deferred.addCallback for this timer, to be set on the Deferred class: it reports the\n"
"callback added (deferred_callbacks_added) and calls ``add_callback`` (Twisted's own) with\n"
"the callback timed.");

static PyObject *
DeferredTimer_adder(DeferredTimer *self, PyObject *add_callback)
{
    CallbackAdder *adder = PyObject_GC_New(CallbackAdder, &CallbackAdderType);
    if (adder == NULL)
        return NULL;
    adder->vectorcall = (vectorcallfunc)CallbackAdder_call;
    adder->timer = (DeferredTimer *)Py_NewRef(self);
    adder->add_callback = Py_NewRef(add_callback);
    PyObject_GC_Track(adder);
    return (PyObject *)adder;
}

static int
DeferredTimer_traverse(DeferredTimer *self, visitproc visit, void *arg)
{
    Py_VISIT(self->probe);
    Py_VISIT(self->failure);
    Py_VISIT(self->deferred);
    Py_VISIT(self->settled);
    Py_VISIT(self->failed);
    return 0;
}

static int
DeferredTimer_clear(DeferredTimer *self)
{
    Py_CLEAR(self->probe);
    Py_CLEAR(self->failure);
    Py_CLEAR(self->deferred);
    Py_CLEAR(self->settled);
    Py_CLEAR(self->failed);
    return 0;
}

/* The pure-Python probe's timed callbacks run in a Python function; these run in none. */
static PyObject *
DeferredTimer_codes(DeferredTimer *self, void *Py_UNUSED(closure))
{
    return PyFrozenSet_New(NULL);
}

static PyGetSetDef DeferredTimer_getset[] = {
    {"codes", (getter)DeferredTimer_codes, NULL,
     "the code of the Python functions a timed callback runs in (none)", NULL},
    {NULL}
};

static PyMethodDef DeferredTimer_methods[] = {
    {"callback_of", (PyCFunction)DeferredTimer_callback_of, METH_O, callback_of_doc},
    {"adder", (PyCFunction)DeferredTimer_adder, METH_O, adder_doc},
    {NULL}
};

static PyTypeObject DeferredTimerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._native.DeferredTimer",
    .tp_doc = PyDoc_STR(
        "Made by Probe.deferred_timer(failure, deferred, settled, failed); timer(d, f,\n"
        "is_errback) is ``f`` timed as a callback of Deferred ``d``."),
    .tp_basicsize = sizeof(DeferredTimer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(DeferredTimer, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = gc_object_dealloc,
    .tp_traverse = (traverseproc)DeferredTimer_traverse,
    .tp_clear = (inquiry)DeferredTimer_clear,
    .tp_methods = DeferredTimer_methods,
    .tp_getset = DeferredTimer_getset,
};

PyDoc_STRVAR(deferred_timer_doc,
"deferred_timer(failure, deferred, settled, failed) -> DeferredTimer\n--\n\n"
"What times Deferred callbacks for this probe: ``failure`` and ``deferred`` are Twisted's\n"
"Failure and Deferred classes; ``failed(d, exc)`` is called when a callback of ``d`` raised\n"
"``exc``, ``settled(d, result)`` when it returned an instance of either (its return value\n"
"is the callback's); both must end the callback (deferred_callback_end).");

static PyObject *
Probe_deferred_timer(Probe *self, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS("deferred_timer", 4);
    if (!PyType_Check(args[0]) || !PyType_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "deferred_timer(): failure and deferred must be classes");
        return NULL;
    }
    DeferredTimer *timer = PyObject_GC_New(DeferredTimer, &DeferredTimerType);
    if (timer == NULL)
        return NULL;
    timer->vectorcall = (vectorcallfunc)DeferredTimer_call;
    timer->probe = (Probe *)Py_NewRef(self);
    timer->failure = Py_NewRef(args[0]);
    timer->deferred = Py_NewRef(args[1]);
    timer->settled = Py_NewRef(args[2]);
    timer->failed = Py_NewRef(args[3]);
    PyObject_GC_Track(timer);
    return (PyObject *)timer;
}

/* -- asyncio handles run in C ---------------------------------------------------------------- */

/* The asyncio adapter's Handle._run for the loop that holds the probe: call_begin, the
 * callback in its context, call_end, as the adapter's Python version does (its comments say
 * what each step is for), with no Python frame of its own.  That frame was most of what
 * tracing added to a callback of a busy asyncio server (about 1,100 instructions of 2,300
 * a read callback cost).  It is a method descriptor: ``handle._run()`` calls it with the
 * handle and makes no bound method.  What is rare or needs the adapter's bookkeeping goes to
 * Python: a handle of another loop, a task step, a connection ending, a class it does not
 * know (``fallback(handle)``), and an exception the callback raised (``report(handle,
 * exc)``, after the call is recorded). */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Probe *probe;
    PyTypeObject *handle_type;  /* asyncio.Handle: the slots below are its own */
    PyObject *kinds;            /* dict: handle class -> kind name */
    PyObject *reader_type;      /* a socket transport's reader: named after the protocol */
    PyObject *fallback, *report;
    PyObject *primary;          /* the loop whose handles run here (None: no loop) */
    Py_ssize_t loop_at, callback_at, args_at, context_at;  /* slot offsets */
} HandleRunner;

static PyObject *str_protocol, *str_data_received, *str_buffer_updated;

static inline PyObject *
slot_at(PyObject *obj, Py_ssize_t offset)
{
    return *(PyObject **)((char *)obj + offset);
}

/* What a transport's read is named after (as _asyncio_io.reader_callable): the protocol's
 * data_received, or buffer_updated for a buffered protocol, else the callback itself.  A new
 * reference.  Reading the protocol's attributes is the application's code (a property may
 * raise): an error names the call after the callback. */
static PyObject *
read_named_after(PyObject *callback)
{
    if (!PyMethod_Check(callback))
        return Py_NewRef(callback);
    PyObject *protocol = PyObject_GetAttr(PyMethod_GET_SELF(callback), str_protocol);
    PyObject *f = NULL;
    if (protocol != NULL && protocol != Py_None) {
        f = PyObject_GetAttr(protocol, str_data_received);
        if (f == NULL) {
            PyErr_Clear();
            f = PyObject_GetAttr(protocol, str_buffer_updated);
        }
    }
    Py_XDECREF(protocol);
    if (f == NULL) {
        PyErr_Clear();
        f = Py_NewRef(callback);
    }
    return f;
}

/* The callback raised ``exc`` (stolen), the call recorded: the loop's exception handler is
 * told, as Handle._run tells it; SystemExit and KeyboardInterrupt go on up. */
static PyObject *
handle_raised(HandleRunner *self, PyObject *handle, PyObject *exc)
{
    if (PyErr_GivenExceptionMatches(exc, PyExc_SystemExit)
            || PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt)) {
        give_error(exc);
        return NULL;
    }
    PyObject *args[2] = {handle, exc};
    PyObject *told = PyObject_Vectorcall(self->report, args, 2, NULL);
    Py_DECREF(exc);
    return told;
}

static PyObject *
HandleRunner_call(HandleRunner *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL
            || !PyObject_TypeCheck(args[0], self->handle_type)) {
        PyErr_SetString(PyExc_TypeError, "Handle._run() takes a handle and nothing else");
        return NULL;
    }
    PyObject *handle = args[0];
    Probe *probe = self->probe;
    PyObject *kind_name = NULL;
    PyObject *loop = slot_at(handle, self->loop_at);
    if (loop == self->primary && loop != Py_None && probe->buffer != NULL)
        kind_name = PyDict_GetItemWithError(self->kinds, (PyObject *)Py_TYPE(handle));
    PyObject *callback = slot_at(handle, self->callback_at);
    PyObject *cargs = slot_at(handle, self->args_at);
    PyObject *context = slot_at(handle, self->context_at);
    if (kind_name == NULL || callback == NULL || cargs == NULL || !PyTuple_Check(cargs)
            || context == NULL || !PyContext_CheckExact(context)) {
        if (PyErr_Occurred())
            return NULL;
        return PyObject_CallOneArg(self->fallback, handle);
    }
    /* The callback may cancel its own handle, which drops these: they are held here. */
    Py_INCREF(callback);
    Py_INCREF(cargs);
    Py_INCREF(context);
    int kind = kind_of(kind_name);
    PyObject *f = (PyObject *)Py_TYPE(handle) == self->reader_type
                  ? read_named_after(callback) : Py_NewRef(callback);
    begin_call(probe, "handle_run", kind, f, handle);
    Py_DECREF(f);
    PyObject *result = NULL;
    if (PyContext_Enter(context) == 0) {
        result = PyObject_Vectorcall(callback, &PyTuple_GET_ITEM(cargs, 0),
                                     (size_t)PyTuple_GET_SIZE(cargs), NULL);
        if (PyContext_Exit(context) < 0)
            Py_CLEAR(result);
    }
    Py_DECREF(callback);
    Py_DECREF(cargs);
    Py_DECREF(context);
    if (result != NULL) {
        Py_DECREF(result);
        end_call(probe, "handle_run", NULL);
        return hook_done(probe);
    }
    PyObject *exc = take_error();
    end_call(probe, "handle_run", exc != NULL ? exc : Py_None);
    if (escaping_here(probe)) {  /* a signal handler raised while the call was recorded */
        if (exc != NULL)
            PyException_SetContext(probe->escaping, exc);
        return hook_done(probe);
    }
    if (exc == NULL) {
        PyErr_SetString(PyExc_SystemError, "a callback failed without an exception");
        return NULL;
    }
    return handle_raised(self, handle, exc);
}

static PyObject *
HandleRunner_get(PyObject *self, PyObject *obj, PyObject *Py_UNUSED(type))
{
    if (obj == NULL || obj == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

static int
HandleRunner_traverse(HandleRunner *self, visitproc visit, void *arg)
{
    Py_VISIT(self->probe);
    Py_VISIT(self->handle_type);
    Py_VISIT(self->kinds);
    Py_VISIT(self->reader_type);
    Py_VISIT(self->fallback);
    Py_VISIT(self->report);
    Py_VISIT(self->primary);
    return 0;
}

static int
HandleRunner_clear(HandleRunner *self)
{
    Py_CLEAR(self->probe);
    Py_CLEAR(self->handle_type);
    Py_CLEAR(self->kinds);
    Py_CLEAR(self->reader_type);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->report);
    Py_CLEAR(self->primary);
    return 0;
}

static PyObject *
HandleRunner_get_primary(HandleRunner *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->primary);
}

static int
HandleRunner_set_primary(HandleRunner *self, PyObject *loop, void *Py_UNUSED(closure))
{
    if (loop == NULL) {
        PyErr_SetString(PyExc_AttributeError, "primary cannot be deleted (set it to None)");
        return -1;
    }
    Py_XSETREF(self->primary, Py_NewRef(loop));
    return 0;
}

static PyGetSetDef HandleRunner_getset[] = {
    {"primary", (getter)HandleRunner_get_primary, (setter)HandleRunner_set_primary,
     "the loop whose handles are timed here (None: every handle goes to the fallback)", NULL},
    {NULL}
};

static PyTypeObject HandleRunnerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._native.HandleRunner",
    .tp_doc = PyDoc_STR(
        "Made by Probe.handle_runner(handle_type, kinds, reader_type, fallback, report):\n"
        "asyncio's Handle._run, timed."),
    .tp_basicsize = sizeof(HandleRunner),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_vectorcall_offset = offsetof(HandleRunner, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = HandleRunner_get,
    .tp_dealloc = gc_object_dealloc,
    .tp_traverse = (traverseproc)HandleRunner_traverse,
    .tp_clear = (inquiry)HandleRunner_clear,
    .tp_getset = HandleRunner_getset,
};

/* The offset of slot ``name`` of ``type`` (an object slot of its own), or -1 with an error. */
static Py_ssize_t
object_slot(PyTypeObject *type, const char *name)
{
    PyObject *key = PyUnicode_FromString(name);
    PyObject *descr = key != NULL ? type_attribute(type, key) : NULL;
    Py_ssize_t offset = -1;
    if (descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type == Py_T_OBJECT_EX)
            offset = member->offset;
    }
    Py_XDECREF(descr);
    Py_XDECREF(key);
    if (offset < 0 && !PyErr_Occurred())
        PyErr_Format(PyExc_TypeError, "handle_runner(): %s.%s is not a slot", type->tp_name, name);
    return offset;
}

PyDoc_STRVAR(handle_runner_doc,
"handle_runner(handle_type, kinds, reader_type, fallback, report) -> HandleRunner\n--\n\n"
"asyncio's Handle._run for this probe, to be set on ``handle_type`` (asyncio.Handle, whose\n"
"slots it reads).  ``kinds`` maps each handle class it times to its call kind; a socket\n"
"transport's reader (``reader_type``) is named after its protocol's method.  The handles of\n"
"the loop ``primary`` of a class in ``kinds`` are timed; any other goes to ``fallback(handle)``,\n"
"and a callback's exception (not SystemExit or KeyboardInterrupt) to ``report(handle, exc)``.");

static PyObject *
Probe_handle_runner(Probe *self, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS("handle_runner", 5);
    if (!PyType_Check(args[0]) || !PyDict_Check(args[1]) || !PyType_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "handle_runner(): handle_type and reader_type are classes, kinds a dict");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[0];
    Py_ssize_t loop_at = object_slot(type, "_loop"), callback_at = object_slot(type, "_callback");
    Py_ssize_t args_at = object_slot(type, "_args"), context_at = object_slot(type, "_context");
    if (loop_at < 0 || callback_at < 0 || args_at < 0 || context_at < 0)
        return NULL;
    HandleRunner *runner = PyObject_GC_New(HandleRunner, &HandleRunnerType);
    if (runner == NULL)
        return NULL;
    runner->vectorcall = (vectorcallfunc)HandleRunner_call;
    runner->probe = (Probe *)Py_NewRef(self);
    runner->handle_type = (PyTypeObject *)Py_NewRef(type);
    runner->kinds = Py_NewRef(args[1]);
    runner->reader_type = Py_NewRef(args[2]);
    runner->fallback = Py_NewRef(args[3]);
    runner->report = Py_NewRef(args[4]);
    runner->primary = Py_NewRef(Py_None);
    runner->loop_at = loop_at;
    runner->callback_at = callback_at;
    runner->args_at = args_at;
    runner->context_at = context_at;
    PyObject_GC_Track(runner);
    return (PyObject *)runner;
}

/* -- Twisted's reads and writes dispatched in C ---------------------------------------------- */

/* The Twisted adapter's wrapper of the epoll and poll reactors' ``_doReadOrWrite(selectable,
 * fd, event)``: the read or write it dispatches, as one call named by the protocol method that
 * runs (tracer/adapters/twisted_reactor.py has the same steps in Python, for the pure-Python
 * probe, with the reasons).  In Python the wrapper and its naming were about 4,000
 * instructions per readiness event, an eighth of a traced echo round trip.  Only the common
 * read, a connection whose protocol wraps none (``wraps[type(protocol)] is False``), is named
 * here; any other read asks ``reader_name(selectable, method)``.  An exception Twisted caught
 * and logged in the dispatch is handed over in ``escaped`` (the adapter's log observer). */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Probe *probe;
    PyObject *dispatch, *internal, *wraps, *reader_name, *escaped;
    long reads_in, disconnected;
} IoDispatcher;

static PyObject *str_dict, *str_producer, *str_resumeProducing, *str_doWrite,
    *str_disconnecting, *str_connected, *str_dataReceived, *str_connectionLost;

/* ``state[name]`` (borrowed), or NULL when absent or ``state`` is NULL. */
static inline PyObject *
state_get(PyObject *state, PyObject *name)
{
    PyObject *value = state != NULL ? PyDict_GetItemWithError(state, name) : NULL;
    if (value == NULL)
        PyErr_Clear();
    return value;
}

/* What a read runs (a new reference), or NULL with an error. */
static PyObject *
io_read_name(IoDispatcher *self, PyObject *selectable, PyObject *state, PyObject *method)
{
    PyObject *protocol = state_get(state, str_protocol);
    if (protocol != NULL && protocol != Py_None) {
        PyObject *wraps = PyDict_GetItemWithError(self->wraps, (PyObject *)Py_TYPE(protocol));
        if (wraps == Py_False) {
            PyObject *runs = PyObject_GetAttr(protocol, method);
            if (runs != NULL && runs != Py_None)
                return runs;
            Py_XDECREF(runs);
        }
        PyErr_Clear();
    }
    PyObject *args[2] = {selectable, method};
    return PyObject_Vectorcall(self->reader_name, args, 2, NULL);
}

/* What a write runs (a new reference): a producer's resumeProducing, doWrite when it finishes
 * connecting or closing, else None (a buffer flushed: no call); NULL with an error. */
static PyObject *
io_write_name(PyObject *selectable, PyObject *state)
{
    PyObject *producer = state_get(state, str_producer);
    if (producer != NULL && producer != Py_None)
        return PyObject_GetAttr(producer, str_resumeProducing);
    if (state != NULL && PyDict_Contains(state, str_doWrite) == 1)
        return PyObject_GetAttr(selectable, str_doWrite);
    PyObject *disconnecting = state_get(state, str_disconnecting);
    PyObject *connected = state_get(state, str_connected);
    int closing = disconnecting != NULL ? PyObject_IsTrue(disconnecting) : 0;
    int open = connected != NULL ? PyObject_IsTrue(connected) : 0;
    if (closing < 0 || open < 0)
        return NULL;
    if (closing || !open)
        return PyObject_GetAttr(selectable, str_doWrite);
    Py_RETURN_NONE;
}

static PyObject *
IoDispatcher_call(IoDispatcher *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 3 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "_doReadOrWrite(selectable, fd, event)");
        return NULL;
    }
    PyObject *selectable = args[0];
    Probe *probe = self->probe;
    int internal = PySet_Contains(self->internal, selectable);
    long event = PyLong_AsLong(args[2]);
    if (internal != 0 || (event == -1 && PyErr_Occurred()) || probe->buffer == NULL) {
        PyErr_Clear();  /* an unhashable selectable, an odd event: Twisted's own to judge */
        return PyObject_Vectorcall(self->dispatch, args, 3, NULL);
    }
    PyObject *state = PyObject_GetAttr(selectable, str_dict);
    if (state != NULL && !PyDict_Check(state))
        Py_CLEAR(state);
    PyErr_Clear();
    int kind = K_READ;
    PyObject *name;
    if (event & self->reads_in)
        name = io_read_name(self, selectable, state, str_dataReceived);
    else if (event & self->disconnected)
        name = io_read_name(self, selectable, state, str_connectionLost);
    else {
        kind = K_WRITE;
        name = io_write_name(selectable, state);
    }
    Py_XDECREF(state);
    if (name == NULL) {  /* naming ran the program's code, which raised: a hook error */
        hook_failed(probe, "io_dispatch");
        name = Py_NewRef(self->dispatch);
    }
    if (name == Py_None) {
        Py_DECREF(name);
        PyObject *result = PyObject_Vectorcall(self->dispatch, args, 3, NULL);
        if (result == NULL)
            return NULL;
        Py_DECREF(result);
        return hook_done(probe);
    }
    begin_call(probe, "io_dispatch", kind, name, selectable);
    Py_DECREF(name);
    PyObject *result = PyObject_Vectorcall(self->dispatch, args, 3, NULL);
    if (result == NULL) {  /* escaped Twisted's own handling: raised on as it is */
        PyObject *exc = take_error();
        end_call(probe, "io_dispatch", exc != NULL ? exc : Py_None);
        if (escaping_here(probe) && exc != NULL) {
            PyException_SetContext(probe->escaping, exc);
            return hook_done(probe);
        }
        if (exc != NULL)
            give_error(exc);
        return NULL;
    }
    Py_DECREF(result);
    Py_ssize_t n = PyList_GET_SIZE(self->escaped);
    PyObject *caught = NULL;
    if (n > 0) {
        caught = Py_NewRef(PyList_GET_ITEM(self->escaped, n - 1));
        if (PyList_SetSlice(self->escaped, n - 1, n, NULL) < 0)
            hook_failed(probe, "io_dispatch");
    }
    end_call(probe, "io_dispatch", caught);
    Py_XDECREF(caught);
    return hook_done(probe);
}

static int
IoDispatcher_traverse(IoDispatcher *self, visitproc visit, void *arg)
{
    Py_VISIT(self->probe);
    Py_VISIT(self->dispatch);
    Py_VISIT(self->internal);
    Py_VISIT(self->wraps);
    Py_VISIT(self->reader_name);
    Py_VISIT(self->escaped);
    return 0;
}

static int
IoDispatcher_clear(IoDispatcher *self)
{
    Py_CLEAR(self->probe);
    Py_CLEAR(self->dispatch);
    Py_CLEAR(self->internal);
    Py_CLEAR(self->wraps);
    Py_CLEAR(self->reader_name);
    Py_CLEAR(self->escaped);
    return 0;
}

static PyTypeObject IoDispatcherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._native.IoDispatcher",
    .tp_doc = PyDoc_STR(
        "Made by Probe.io_dispatcher(dispatch, internal, reads_in, disconnected, wraps,\n"
        "reader_name, escaped): a Twisted reactor's _doReadOrWrite, timed."),
    .tp_basicsize = sizeof(IoDispatcher),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(IoDispatcher, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = gc_object_dealloc,
    .tp_traverse = (traverseproc)IoDispatcher_traverse,
    .tp_clear = (inquiry)IoDispatcher_clear,
};

PyDoc_STRVAR(io_dispatcher_doc,
"io_dispatcher(dispatch, internal, reads_in, disconnected, wraps, reader_name, escaped)\n"
"-> IoDispatcher\n--\n\n"
"A Twisted reactor's ``_doReadOrWrite(selectable, fd, event)`` for this probe: ``dispatch``\n"
"is the reactor's own; a selectable in the set ``internal`` is dispatched untimed;\n"
"``reads_in`` and ``disconnected`` are the event bits of a read and a hang-up; ``wraps`` maps\n"
"protocol classes to whether they wrap another protocol; ``reader_name(selectable, method)``\n"
"names a read of any other; ``escaped`` is the list the exceptions Twisted caught arrive in.");

static PyObject *
Probe_io_dispatcher(Probe *self, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS("io_dispatcher", 7);
    if (!PySet_Check(args[1]) || !PyDict_Check(args[4]) || !PyList_Check(args[6])) {
        PyErr_SetString(PyExc_TypeError,
                        "io_dispatcher(): internal is a set, wraps a dict, escaped a list");
        return NULL;
    }
    long reads_in = PyLong_AsLong(args[2]), disconnected = PyLong_AsLong(args[3]);
    if (PyErr_Occurred())
        return NULL;
    IoDispatcher *dispatcher = PyObject_GC_New(IoDispatcher, &IoDispatcherType);
    if (dispatcher == NULL)
        return NULL;
    dispatcher->vectorcall = (vectorcallfunc)IoDispatcher_call;
    dispatcher->probe = (Probe *)Py_NewRef(self);
    dispatcher->dispatch = Py_NewRef(args[0]);
    dispatcher->internal = Py_NewRef(args[1]);
    dispatcher->reads_in = reads_in;
    dispatcher->disconnected = disconnected;
    dispatcher->wraps = Py_NewRef(args[4]);
    dispatcher->reader_name = Py_NewRef(args[5]);
    dispatcher->escaped = Py_NewRef(args[6]);
    PyObject_GC_Track(dispatcher);
    return (PyObject *)dispatcher;
}

/* -- Twisted's callLater -- */

/* What a Twisted DelayedCall runs, made by TimerScheduler: the program's callable, its
 * arguments, and the slots the probe reads of a timer (``func``, ``time``, ``_trace_id``, as
 * the Python adapter's _TimerSource has them).  Calling it runs the callable as a traced
 * timer call.  In Python this was a _TimerSource, a functools.partial and the partial's
 * arguments tuple: three objects the garbage collector tracks per pending call, and with
 * 200k calls pending the collector's passes over them were most of tracing's cost.  This is
 * one. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Probe *probe;
    PyObject *func;                     /* the program's callable, which names the call */
    PyObject *time, *trace_id;          /* written by the probe and the adapter (reset, delay) */
    PyObject *args, *kw;                /* kw: NULL or a dict */
} TimedCall;

static PyObject *
TimedCall_call(TimedCall *self, PyObject *const *Py_UNUSED(args), size_t nargsf,
               PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 0 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "a traced timer call takes no arguments");
        return NULL;
    }
    return run_traced(self->probe, K_TIMER, self->func, (PyObject *)self, self->args, self->kw);
}

static int
TimedCall_traverse(TimedCall *self, visitproc visit, void *arg)
{
    Py_VISIT(self->probe);
    Py_VISIT(self->func);
    Py_VISIT(self->time);
    Py_VISIT(self->trace_id);
    Py_VISIT(self->args);
    Py_VISIT(self->kw);
    return 0;
}

static int
TimedCall_clear(TimedCall *self)
{
    Py_CLEAR(self->probe);
    Py_CLEAR(self->func);
    Py_CLEAR(self->time);
    Py_CLEAR(self->trace_id);
    Py_CLEAR(self->args);
    Py_CLEAR(self->kw);
    return 0;
}

static PyObject *
TimedCall_repr(TimedCall *self)
{
    return PyUnicode_FromFormat("<traced %R>", self->func);
}

static PyMemberDef TimedCall_members[] = {
    {"func", Py_T_OBJECT_EX, offsetof(TimedCall, func), Py_READONLY, "the program's callable"},
    {"time", Py_T_OBJECT_EX, offsetof(TimedCall, time), 0, "when it is due (time.monotonic)"},
    {"_trace_id", Py_T_OBJECT_EX, offsetof(TimedCall, trace_id), 0, "the timer's id in the trace"},
    {NULL}
};

static PyTypeObject TimedCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._native.TimedCall",
    .tp_doc = PyDoc_STR("What a traced Twisted DelayedCall runs (made by TimerScheduler)."),
    .tp_basicsize = sizeof(TimedCall),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(TimedCall, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_repr = (reprfunc)TimedCall_repr,
    .tp_dealloc = gc_object_dealloc,
    .tp_traverse = (traverseproc)TimedCall_traverse,
    .tp_clear = (inquiry)TimedCall_clear,
    .tp_members = TimedCall_members,
};

/* Twisted's ``reactor.callLater(delay, f, *args, **kw)`` as the adapter replaces it: for a
 * plain function or a bound method (not a Deferred's callback/errback, which are named when
 * they run), Twisted's own callLater is given a TimedCall and the timer is reported; any other
 * callable goes to ``fallback``, the adapter's Python wrapper, which names it.  The Python
 * wrapper cost a frame per call scheduled. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Probe *probe;
    PyObject *call_later, *fallback, *fire_functions;
} TimerScheduler;

/* ``f`` is scheduled by TimerScheduler itself (1), by the fallback (0), or the check raised
 * (-1). */
static inline int
schedules_itself(TimerScheduler *self, PyObject *f)
{
    if (Py_IS_TYPE(f, &PyFunction_Type))
        return 1;
    if (!Py_IS_TYPE(f, &PyMethod_Type))
        return 0;
    int fires = PyDict_Contains(self->fire_functions, PyMethod_GET_FUNCTION(f));
    return fires < 0 ? -1 : !fires;
}

static PyObject *
TimerScheduler_call(TimerScheduler *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    int itself = nargs >= 2 ? schedules_itself(self, args[1]) : 0;
    if (itself < 0)
        return NULL;
    if (!itself)
        return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
    TimedCall *timed = PyObject_GC_New(TimedCall, &TimedCallType);
    if (timed == NULL)
        return NULL;
    timed->vectorcall = (vectorcallfunc)TimedCall_call;
    timed->probe = (Probe *)Py_NewRef(self->probe);
    timed->func = Py_NewRef(args[1]);
    timed->time = timed->trace_id = timed->kw = NULL;
    timed->args = PyTuple_New(nargs - 2);
    PyObject_GC_Track(timed);
    if (timed->args == NULL)
        goto failed;
    for (Py_ssize_t i = 2; i < nargs; i++)
        PyTuple_SET_ITEM(timed->args, i - 2, Py_NewRef(args[i]));
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nkw) {
        if ((timed->kw = PyDict_New()) == NULL)
            goto failed;
        for (Py_ssize_t i = 0; i < nkw; i++)
            if (PyDict_SetItem(timed->kw, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
                goto failed;
    }
    PyObject *call = PyObject_CallFunctionObjArgs(self->call_later, args[0], timed, NULL);
    if (call == NULL)  /* Twisted refused it (a negative delay, say) */
        goto failed;
    Probe *probe = self->probe;
    if (probe->buffer != NULL) {
        double delay = PyFloat_AsDouble(args[0]);
        if (delay == -1.0 && PyErr_Occurred())
            PyErr_Clear();  /* a delay Twisted takes but not as a float: no due time, no lag */
        else
            timed->time = PyFloat_FromDouble((double)monotonic_ns() / 1e9 + delay);
        if (PyErr_Occurred())
            hook_failed(probe, "timer_scheduled");
        note_scheduled(probe, (PyObject *)timed, 0);
        if (escaping_here(probe)) {
            Py_DECREF(timed);
            Py_DECREF(call);
            return hook_done(probe);
        }
    }
    Py_DECREF(timed);
    return call;
failed:
    Py_DECREF(timed);
    return NULL;
}

static int
TimerScheduler_traverse(TimerScheduler *self, visitproc visit, void *arg)
{
    Py_VISIT(self->probe);
    Py_VISIT(self->call_later);
    Py_VISIT(self->fallback);
    Py_VISIT(self->fire_functions);
    return 0;
}

static int
TimerScheduler_clear(TimerScheduler *self)
{
    Py_CLEAR(self->probe);
    Py_CLEAR(self->call_later);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->fire_functions);
    return 0;
}

static PyObject *
TimerScheduler_repr(TimerScheduler *self)
{
    return PyUnicode_FromFormat("<traced %R>", self->call_later);
}

static PyTypeObject TimerSchedulerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._native.TimerScheduler",
    .tp_doc = PyDoc_STR("Made by Probe.timer_scheduler(...): Twisted's callLater, traced."),
    .tp_basicsize = sizeof(TimerScheduler),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(TimerScheduler, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_repr = (reprfunc)TimerScheduler_repr,
    .tp_dealloc = gc_object_dealloc,
    .tp_traverse = (traverseproc)TimerScheduler_traverse,
    .tp_clear = (inquiry)TimerScheduler_clear,
};

PyDoc_STRVAR(timer_scheduler_doc,
"timer_scheduler(call_later, fallback, fire_functions) -> TimerScheduler\n--\n\n"
"A Twisted reactor's ``callLater(delay, f, *args, **kw)`` for this probe: ``call_later`` is\n"
"the reactor's own, given a TimedCall for a plain function or a bound method whose function\n"
"is not a key of the dict ``fire_functions`` (Deferred.callback and .errback); ``fallback``\n"
"schedules any other callable.");

static PyObject *
Probe_timer_scheduler(Probe *self, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS("timer_scheduler", 3);
    if (!PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "timer_scheduler(): fire_functions is a dict");
        return NULL;
    }
    TimerScheduler *scheduler = PyObject_GC_New(TimerScheduler, &TimerSchedulerType);
    if (scheduler == NULL)
        return NULL;
    scheduler->vectorcall = (vectorcallfunc)TimerScheduler_call;
    scheduler->probe = (Probe *)Py_NewRef(self);
    scheduler->call_later = Py_NewRef(args[0]);
    scheduler->fallback = Py_NewRef(args[1]);
    scheduler->fire_functions = Py_NewRef(args[2]);
    PyObject_GC_Track(scheduler);
    return (PyObject *)scheduler;
}

/* -- the rare hooks -- */

/* The rare hooks (reactor/_instrument.py) are the Python half's, called through these: a
 * probe with an instance dictionary to bind them in is one whose method lookups CPython 3.12
 * and later do not specialize, and each hot hook's lookup then cost about 180 instructions
 * more (callgrind, a chain step on 3.13). */
#define RARE_HOOKS(X) X(loop_started) X(loop_stopped) X(timer_cancelled) X(descriptor_added) \
    X(descriptor_removed) X(connection_opened) X(connection_closed) X(thread_submitted) \
    X(thread_started) X(thread_done) X(deferred_chained) X(deferred_cancelled) \
    X(deferred_unhandled)
#define RARE_HOOKS_ARGS_MAX 7

#define RARE_NAME(name) static PyObject *str_##name;
RARE_HOOKS(RARE_NAME)

static PyObject *
rare_hook(Probe *self, PyObject *name, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > RARE_HOOKS_ARGS_MAX) {
        PyErr_Format(PyExc_TypeError, "%U() takes at most %d arguments", name,
                     RARE_HOOKS_ARGS_MAX);
        return NULL;
    }
    if (self->delegate == NULL)
        Py_RETURN_NONE;
    PyObject *stack[RARE_HOOKS_ARGS_MAX + 1] = {self->delegate};
    for (Py_ssize_t i = 0; i < nargs; i++)
        stack[i + 1] = args[i];
    return PyObject_VectorcallMethod(name, stack, (size_t)(nargs + 1), NULL);
}

#define RARE_HOOK(name) \
    static PyObject * \
    Probe_##name(Probe *self, PyObject *const *args, Py_ssize_t nargs) \
    { \
        return rare_hook(self, str_##name, args, nargs); \
    }
RARE_HOOKS(RARE_HOOK)

/* -- for the Python half and the watchdog -- */

PyDoc_STRVAR(top_doc,
"top() -> (serial, start_ns, kind, code, site, depth) or None\n--\n\n"
"The innermost call in progress on the reactor thread (``serial`` tells one call from the\n"
"next; ``code`` is its function's code object, or None), or None when the loop runs none.");

static PyObject *
Probe_top(Probe *self, PyObject *Py_UNUSED(ignored))
{
    if (self->depth == 0)
        Py_RETURN_NONE;
    Frame *f = &self->stack[self->depth - 1];
    return Py_BuildValue("(KLOOLn)", f->serial, (long long)f->start, kind_strings[f->kind],
                         f->code != NULL ? f->code : Py_None, (long long)f->site,
                         self->depth - 1);
}

PyDoc_STRVAR(close_calls_doc,
"close_calls()\n--\n\n"
"Recording stops while the reactor thread is inside loop calls: pytest-twisted runs each test\n"
"inside a reactor callback and tracing stops with the test, or SIGTERM stops it while a\n"
"callback blocks (an asyncio program leaves SIGTERM to the tracer).  Each such call is\n"
"written as ending now, innermost first, so that the stall it is stays in the trace.  Only\n"
"on the reactor thread, whose stack this is.");

static PyObject *
Probe_close_calls(Probe *self, PyObject *Py_UNUSED(ignored))
{
    READY_OR_RETURN(self);
    if (!on_reactor_thread(self))
        Py_RETURN_NONE;
    int64_t t = now_ns();
    while (self->depth > 0) {
        Frame f = self->stack[--self->depth];
        if (f.kind == K_DEFERRED)
            emit(self, ROW_DCALL, t, 6,
                 (int64_t[]){f.x, f.site, t - f.start, self->depth, f.y, 0});
        else
            emit(self, ROW_CALL, t, 6,
                 (int64_t[]){f.kind, f.site, t - f.start, self->depth, f.x, f.y});
        Py_XDECREF(f.code);
    }
    Py_RETURN_NONE;
}

/* The watchdog (tracer/watchdog.py) looks at the innermost call every few milliseconds.  In
 * Python each look takes the GIL, and a thread waiting for the GIL is woken at each release by
 * the loop thread (every poll) until it gets it: on a busy Twisted loop, a hundred looks a
 * second made tens of thousands of wake-ups, each a futex call the loop thread paid for
 * (about 5% of the chain workload).  This waits with the GIL released and looks at the top
 * frame itself; it returns when a look in Python is due.  It reads what the loop thread is
 * changing: each field atomically, an outgrown stack still allocated (retired), and a frame
 * read half-written only makes it return early, for the look in Python to decide. */
PyDoc_STRVAR(wait_for_stall_doc,
"wait_for_stall(threshold_ns, tick_s, longest_s, serial, due_ns, wake_fd) -> bool\n--\n\n"
"Look at the innermost call every ``tick_s`` seconds, without the GIL, until it has run\n"
"``threshold_ns`` (True), or, if it is call ``serial``, until ``due_ns`` on the monotonic\n"
"clock; False after ``longest_s`` seconds with no such call, or at once when ``wake_fd`` is\n"
"readable (the watchdog is stopping or its sources changed) or no longer open.");

static PyObject *
Probe_wait_for_stall(Probe *self, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS("wait_for_stall", 6);
    long long threshold = PyLong_AsLongLong(args[0]);
    double tick = PyFloat_AsDouble(args[1]), longest = PyFloat_AsDouble(args[2]);
    unsigned long long serial = PyLong_AsUnsignedLongLongMask(args[3]);
    long long due = PyLong_AsLongLong(args[4]);
    long wake_fd = PyLong_AsLong(args[5]);
    if (PyErr_Occurred())
        return NULL;
    if (!(tick > 0 && tick < 60 && longest >= 0 && longest < 3600)) {
        PyErr_SetString(PyExc_ValueError, "wait_for_stall(): tick_s in (0, 60), longest_s in [0, 3600)");
        return NULL;
    }
    int found = 0;
    Py_BEGIN_ALLOW_THREADS
    int64_t until = monotonic_ns() + (int64_t)(longest * 1e9);
    struct pollfd wake = {(int)wake_fd, POLLIN, 0};
    int pause_ms = tick < 0.001 ? 1 : (int)(tick * 1000);
    for (;;) {
        int ready = poll(&wake, 1, pause_ms);
        if (ready != 0)
            break;  /* woken, or the descriptor is closed under it: the watchdog sees which */
        int64_t now = monotonic_ns();
        Py_ssize_t cap = __atomic_load_n(&self->stack_cap, __ATOMIC_ACQUIRE);
        Frame *stack = __atomic_load_n(&self->stack, __ATOMIC_ACQUIRE);
        Py_ssize_t depth = __atomic_load_n(&self->depth, __ATOMIC_RELAXED);
        if (depth > 0 && depth <= cap) {
            Frame *top = &stack[depth - 1];
            int64_t start = __atomic_load_n(&top->start, __ATOMIC_RELAXED);
            unsigned long long running = __atomic_load_n(&top->serial, __ATOMIC_RELAXED);
            if (running == serial ? now >= due : now - start >= threshold) {
                found = 1;
                break;
            }
        }
        if (now >= until)
            break;
    }
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(found);
}

PyDoc_STRVAR(deferred_site_doc,
"deferred_site(d) -> site\n--\n\n"
"Where Deferred ``d`` (an id) was created, if it is recent enough to be remembered, else 0.");

static PyObject *
Probe_deferred_site(Probe *self, PyObject *arg)
{
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred())
        return NULL;
    int64_t *entry = self->dsites[id & (DSITES - 1)];
    return PyLong_FromLongLong(id > 0 && entry[0] == id ? entry[1] : 0);
}

PyDoc_STRVAR(new_deferred_id_doc,
"new_deferred_id(d) -> id\n--\n\nGive ``d`` (created before tracing) a Deferred id.");

static PyObject *
Probe_deferred_id(Probe *self, PyObject *d)
{
    return PyLong_FromLongLong(trace_id(self, "deferred_id", &self->deferred_id, d,
                                        &self->next_deferred));
}

PyDoc_STRVAR(watch_fd_doc,
"watch_fd(obj, fd)\n--\n\n"
"A read or write call whose source is ``obj`` (a descriptor, transport or reader handle) is\n"
"of ``fd`` from now on, until ``unwatch_fd(obj)``.  No reference to ``obj`` is kept.");

static PyObject *
Probe_watch_fd(Probe *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "watch_fd(obj, fd) takes 2 arguments");
        return NULL;
    }
    long long fd = PyLong_AsLongLong(args[1]);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (fd_put(&self->fds, (uintptr_t)args[0], fd) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(unwatch_fd_doc,
"unwatch_fd(obj)\n--\n\nForget the fd of ``obj`` (nothing when it has none).");

static PyObject *
Probe_unwatch_fd(Probe *self, PyObject *obj)
{
    fd_remove(&self->fds, (uintptr_t)obj);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(fd_of_doc,
"fd_of(obj) -> fd or None\n--\n\nThe fd watched for ``obj``.");

static PyObject *
Probe_fd_of(Probe *self, PyObject *obj)
{
    int64_t fd = fd_get(&self->fds, (uintptr_t)obj);
    if (fd == NIL)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(fd);
}

PyDoc_STRVAR(fds_watched_doc, "how many objects have an fd watched");

static PyObject *
Probe_fds_watched(Probe *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSize_t(self->fds.used);
}

static PyMethodDef Probe_methods[] = {
    {"poll_begin", (PyCFunction)Probe_poll_begin, METH_O, NULL},
    {"poll_end", (PyCFunction)Probe_poll_end, METH_O, NULL},
    {"poll_end_fds", (PyCFunction)(void (*)(void))Probe_poll_end_fds, METH_FASTCALL,
     poll_end_fds_doc},
    {"call_begin", (PyCFunction)(void (*)(void))Probe_call_begin, METH_FASTCALL, NULL},
    {"call_end", (PyCFunction)Probe_call_end, METH_O, NULL},
    {"run_call", (PyCFunction)(void (*)(void))Probe_run_call, METH_FASTCALL, NULL},
    {"timer_scheduled", (PyCFunction)Probe_timer_scheduled, METH_O, NULL},
    {"deferred_created", (PyCFunction)Probe_deferred_created, METH_O, NULL},
    {"deferred_callbacks_added", (PyCFunction)(void (*)(void))Probe_deferred_callbacks_added,
     METH_FASTCALL, NULL},
    {"deferred_fired", (PyCFunction)(void (*)(void))Probe_deferred_fired, METH_FASTCALL, NULL},
    {"deferred_callback_begin", (PyCFunction)(void (*)(void))Probe_deferred_callback_begin,
     METH_FASTCALL, NULL},
    {"deferred_callback_end", (PyCFunction)(void (*)(void))Probe_deferred_callback_end,
     METH_FASTCALL, NULL},
    {"top", (PyCFunction)Probe_top, METH_NOARGS, top_doc},
    {"close_calls", (PyCFunction)Probe_close_calls, METH_NOARGS, close_calls_doc},
    {"wait_for_stall", (PyCFunction)(void (*)(void))Probe_wait_for_stall, METH_FASTCALL,
     wait_for_stall_doc},
    {"watch_fd", (PyCFunction)(void (*)(void))Probe_watch_fd, METH_FASTCALL, watch_fd_doc},
    {"unwatch_fd", (PyCFunction)Probe_unwatch_fd, METH_O, unwatch_fd_doc},
    {"fd_of", (PyCFunction)Probe_fd_of, METH_O, fd_of_doc},
    {"deferred_site", (PyCFunction)Probe_deferred_site, METH_O, deferred_site_doc},
    {"deferred_id", (PyCFunction)Probe_deferred_id, METH_O, new_deferred_id_doc},
    {"deferred_timer", (PyCFunction)(void (*)(void))Probe_deferred_timer, METH_FASTCALL,
     deferred_timer_doc},
    {"handle_runner", (PyCFunction)(void (*)(void))Probe_handle_runner, METH_FASTCALL,
     handle_runner_doc},
#define RARE_METHOD(name) \
    {#name, (PyCFunction)(void (*)(void))Probe_##name, METH_FASTCALL, "the Python half's " #name},
    RARE_HOOKS(RARE_METHOD)
    {"timer_scheduler", (PyCFunction)(void (*)(void))Probe_timer_scheduler, METH_FASTCALL,
     timer_scheduler_doc},
    {"io_dispatcher", (PyCFunction)(void (*)(void))Probe_io_dispatcher, METH_FASTCALL,
     io_dispatcher_doc},
    {NULL}
};

static PyMemberDef Probe_members[] = {
    {"reactor_thread", Py_T_ULONG, offsetof(Probe, reactor_thread), 0,
     "thread ident of the reactor (Deferred callbacks elsewhere are not timed)"},
    {"t0", Py_T_LONGLONG, offsetof(Probe, t0), Py_READONLY, "monotonic ns of the trace's t = 0"},
    {"hook_errors", Py_T_LONGLONG, offsetof(Probe, hook_errors), Py_READONLY,
     "errors the hooks met (in the Python half's slow paths, attribute reads, allocations)\n"
     "and kept from the application"},
    {NULL}
};

static PyGetSetDef Probe_getset[] = {
    {"fds_watched", (getter)Probe_fds_watched, NULL, fds_watched_doc, NULL},
    {NULL}
};

static PyTypeObject ProbeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._native.Probe",
    .tp_doc = PyDoc_STR(
        "Probe(buffer, t0, delegate): the hot instrumentation points, recording into\n"
        "``buffer``.  ``delegate`` (tracer.probe.TraceProbe) provides the slow paths\n"
        "``_fn_site(f) -> (site, code)``, ``_origin(frame) -> (site, cacheable)`` and\n"
        "``_call_failed(t, kind, site, dur, depth, x, lag, exc)``, is told of the hooks' own\n"
        "errors by ``_hook_failed(hook, exc)`` if it has that method (they never reach the\n"
        "application; ``hook_errors`` counts them), and has the rare hooks, which these forward\n"
        "to it.  The probe installed is this type itself, not a subclass:\n"
        "CPython 3.11 calls a C method fast only on an instance of exactly its type."),
    .tp_basicsize = sizeof(Probe),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_getset = Probe_getset,
    .tp_new = Probe_new,
    .tp_init = (initproc)Probe_init,
    .tp_dealloc = (destructor)Probe_dealloc,
    .tp_traverse = (traverseproc)Probe_traverse,
    .tp_clear = (inquiry)Probe_clear,
    .tp_methods = Probe_methods,
    .tp_members = Probe_members,
};

/* -- the module ----------------------------------------------------------------------------- */

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tracer._native",
    .m_doc = PyDoc_STR("The tracer's hot path in C: event buffer, hot probe hooks, line writer."),
    .m_size = -1,
};

/* ROW_LAYOUTS: each row kind's name -> the type letters of its fields (ROWS[]). */
static int
add_row_layouts(PyObject *m)
{
    PyObject *layouts = PyDict_New();
    if (layouts == NULL)
        return -1;
    for (int row = 0; row < N_ROWS; row++) {
        if (ROWS[row].open == NULL)  /* a finished line */
            continue;
        /* the kind is the opening text without its [" and ", */
        PyObject *kind = PyUnicode_FromStringAndSize(ROWS[row].open + 2,
                                                     (Py_ssize_t)ROWS[row].open_len - 4);
        PyObject *types = PyUnicode_FromString(ROWS[row].types);
        int failed = kind == NULL || types == NULL || PyDict_SetItem(layouts, kind, types) < 0;
        Py_XDECREF(kind);
        Py_XDECREF(types);
        if (failed) {
            Py_DECREF(layouts);
            return -1;
        }
    }
    int added = PyModule_AddObjectRef(m, "ROW_LAYOUTS", layouts);
    Py_DECREF(layouts);
    return added;
}

PyMODINIT_FUNC
PyInit__native(void)
{
    for (int k = 0; k < N_KINDS; k++) {
        KIND_LENGTHS[k] = strlen(KIND_NAMES[k]);
        if ((kind_strings[k] = PyUnicode_InternFromString(KIND_NAMES[k])) == NULL)
            return NULL;
    }
    if ((str_time = PyUnicode_InternFromString("time")) == NULL
            || (str_func = PyUnicode_InternFromString("func")) == NULL
            || (str_trace_id = PyUnicode_InternFromString("_trace_id")) == NULL
            || (str_fn_site = PyUnicode_InternFromString("_fn_site")) == NULL
            || (str_origin = PyUnicode_InternFromString("_origin")) == NULL
            || (str_call_failed = PyUnicode_InternFromString("_call_failed")) == NULL
            || (str_hook_failed = PyUnicode_InternFromString("_hook_failed")) == NULL
            || (str_protocol = PyUnicode_InternFromString("_protocol")) == NULL
            || (str_data_received = PyUnicode_InternFromString("data_received")) == NULL
            || (str_buffer_updated = PyUnicode_InternFromString("buffer_updated")) == NULL
            || (str_dict = PyUnicode_InternFromString("__dict__")) == NULL
            || (str_producer = PyUnicode_InternFromString("producer")) == NULL
            || (str_resumeProducing = PyUnicode_InternFromString("resumeProducing")) == NULL
            || (str_doWrite = PyUnicode_InternFromString("doWrite")) == NULL
            || (str_disconnecting = PyUnicode_InternFromString("disconnecting")) == NULL
            || (str_connected = PyUnicode_InternFromString("connected")) == NULL
            || (str_dataReceived = PyUnicode_InternFromString("dataReceived")) == NULL
            || (str_connectionLost = PyUnicode_InternFromString("connectionLost")) == NULL
#define RARE_INTERN(name) || (str_##name = PyUnicode_InternFromString(#name)) == NULL
            RARE_HOOKS(RARE_INTERN))
        return NULL;
    if (PyType_Ready(&BufferType) < 0 || PyType_Ready(&ProbeType) < 0
            || PyType_Ready(&TimedCallbackType) < 0 || PyType_Ready(&DeferredTimerType) < 0
            || PyType_Ready(&HandleRunnerType) < 0 || PyType_Ready(&IoDispatcherType) < 0
            || PyType_Ready(&CallbackAdderType) < 0 || PyType_Ready(&TimedCallType) < 0
            || PyType_Ready(&TimerSchedulerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
#ifdef Py_GIL_DISABLED
    /* The GIL is needed (see "Free threading" at the top). */
    if (PyUnstable_Module_SetGIL(m, Py_MOD_GIL_USED) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#endif
    if (PyModule_AddIntConstant(m, "SITES_CACHED", SITES_CACHED) < 0
            || PyModule_AddObjectRef(m, "Buffer", (PyObject *)&BufferType) < 0
            || PyModule_AddObjectRef(m, "Probe", (PyObject *)&ProbeType) < 0
            || PyModule_AddObjectRef(m, "TimedCall", (PyObject *)&TimedCallType) < 0
            || add_row_layouts(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
