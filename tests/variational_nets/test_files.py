"""variational_nets.files: atomic writes leave the old file or the new one, never part of one;
output paths are checked before any work and no folder is created that the caller did not name."""
import json
import os
import stat

import pytest

from variational_nets.files import atomic_write, check_output_dir, check_output_file, savefig, write_json


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    write_json(target, {"a": 1.5})
    assert json.loads(target.read_text()) == {"a": 1.5}
    assert os.listdir(tmp_path) == ["r.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "r.json"
    target.write_text('{"complete": true}')
    with pytest.raises(TypeError):  # json cannot encode a set: the write stops half way
        write_json(target, {"x": [1, 2, 3], "y": {1, 2}})
    assert target.read_text() == '{"complete": true}'
    assert os.listdir(tmp_path) == ["r.json"]


def test_an_interrupt_inside_the_block_keeps_the_old_file(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as fh:
            fh.write("half of the new")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["t.txt"]


def test_the_new_file_gets_the_permissions_of_a_plain_open(tmp_path):
    plain, atomic = tmp_path / "plain.txt", tmp_path / "atomic.txt"
    plain.write_text("x")
    with atomic_write(atomic) as fh:
        fh.write("x")
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_savefig_takes_the_format_from_the_suffix(tmp_path):
    from matplotlib.figure import Figure

    figure = Figure()
    figure.add_subplot().plot([0, 1], [1, 0])
    savefig(figure, tmp_path / "f.pdf")
    savefig(figure, tmp_path / "f.png", dpi=50)
    assert (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(os.listdir(tmp_path)) == ["f.pdf", "f.png"]


def test_atomic_write_refuses_other_modes(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic_write(tmp_path / "x", "a"):
            pass


@pytest.mark.parametrize("make,match", [
    (lambda d: d / "missing" / "x.json", "the folder .*missing.* does not exist"),
    (lambda d: d, "is a folder, expected a file name"),
    (lambda d: str(d / "sub") + os.sep, "is a folder, expected a file name"),
    (lambda d: d / "file.txt" / "x.json", "is a file, not a folder"),
    (lambda d: "", "expected a file name, got an empty path"),
])
def test_check_output_file_refuses_paths_that_cannot_be_written(tmp_path, make, match):
    (tmp_path / "file.txt").write_text("a file")
    with pytest.raises(ValueError, match="json_path: .*" + match):
        check_output_file(make(tmp_path), name="json_path")
    assert sorted(os.listdir(tmp_path)) == ["file.txt"]


def test_check_output_file_suffixes_and_types(tmp_path):
    assert check_output_file(tmp_path / "a.JSONL", suffixes=(".jsonl",)) == tmp_path / "a.JSONL"
    with pytest.raises(ValueError, match="path: expected a file name ending in .jsonl"):
        check_output_file(tmp_path / "a.json", suffixes=(".jsonl",))
    with pytest.raises(TypeError, match="path must be a path, got int"):
        check_output_file(3)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="is not writable"):
            check_output_file(folder / "x.json")
        with pytest.raises(ValueError, match="is not writable"):
            check_output_dir(folder)
    finally:
        folder.chmod(0o700)


def test_check_output_dir_creates_nothing_and_follows_create_and_parents(tmp_path):
    (tmp_path / "file.txt").write_text("a file")
    assert check_output_dir(tmp_path) == tmp_path
    with pytest.raises(ValueError, match="out_dir: .*file.txt' is a file, expected a folder"):
        check_output_dir(tmp_path / "file.txt")
    with pytest.raises(ValueError, match="out_dir: the folder .*new' does not exist"):
        check_output_dir(tmp_path / "new")
    assert check_output_dir(tmp_path / "new", create=True) == tmp_path / "new"
    with pytest.raises(ValueError, match="the folder .*a' of .*does not exist"):
        check_output_dir(tmp_path / "a" / "b", create=True)
    assert check_output_dir(tmp_path / "a" / "b", create=True, parents=True) == tmp_path / "a" / "b"
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "file.txt" / "b", create=True, parents=True)
    assert sorted(os.listdir(tmp_path)) == ["file.txt"]


def test_a_folder_the_process_may_not_write_is_refused(tmp_path, monkeypatch):
    # as root every folder is writable, so the permission answer is what this test controls
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(ValueError, match="csv_path: the folder .* is not writable"):
        check_output_file(tmp_path / "x.csv", name="csv_path")
    with pytest.raises(ValueError, match="out: the folder .* is not writable"):
        check_output_dir(tmp_path, name="out")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_folder_that_refuses_new_files_is_refused_even_when_permissions_say_yes():
    # /proc passes os.access for root, yet no file can be created in it: the check must create one
    with pytest.raises(ValueError, match="json: the folder '/proc' is not writable"):
        check_output_file("/proc/x.json", name="json")
    with pytest.raises(ValueError, match="out: the folder '/proc' is not writable"):
        check_output_dir("/proc/report", name="out", create=True)


def test_the_writability_probe_leaves_nothing_behind(tmp_path):
    check_output_file(tmp_path / "x.json")
    check_output_dir(tmp_path / "new", create=True)
    assert os.listdir(tmp_path) == []
