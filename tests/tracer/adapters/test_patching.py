"""tracer.adapters._patching: replaced attributes come back exactly; modules are patched as
they are imported, and look untouched afterwards."""

import sys

from tracer.adapters._patching import PatchOnImport, Patches


class Thing:
    def method(self):
        return "class"


def test_restore_deletes_what_the_object_did_not_have_and_sets_back_what_it_had():
    thing = Thing()
    thing.own = 1
    patches = Patches()
    patches.set(thing, "method", lambda: "instance")
    patches.set(thing, "own", 2)
    patches.set(Thing, "method", lambda self: "patched class")
    assert (thing.method(), thing.own, Thing().method()) == ("instance", 2, "patched class")
    patches.restore()
    assert "method" not in vars(thing) and thing.own == 1
    assert thing.method() == "class" and Thing().method() == "class"


def test_a_module_is_patched_when_imported_and_one_already_imported_at_once(tmp_path, monkeypatch):
    (tmp_path / "late_module.py").write_text("VALUE = 'original'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []

    def patch(module):
        seen.append(module.__name__)
        module.VALUE = "patched"

    hook = PatchOnImport({"late_module": patch, "json": lambda m: seen.append(m.__name__)})
    hook.install()
    try:
        import late_module
        assert late_module.VALUE == "patched"
        assert seen == ["json", "late_module"]  # json was imported already
        assert type(late_module.__loader__).__name__ == "SourceFileLoader"
        assert late_module.__spec__.loader is late_module.__loader__
    finally:
        hook.uninstall()
        sys.modules.pop("late_module", None)
    assert hook not in sys.meta_path
