"""``auditmw keygen`` file and directory modes, whatever the umask."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from auditmw.cli import main

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Run with umask 000, the most permissive a service could have."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.usefixtures("open_umask")
class TestModes:
    def test_new_directory_is_private(self, tmp_path: Path) -> None:
        """Issue 21.8: the directory keygen creates is 0700, not 0755 (or 0777)."""
        out = tmp_path / "keys"
        assert main(["keygen", "--out", str(out)]) == 0
        assert mode(out) == 0o700
        assert mode(out / "auditmw.key") == 0o600

    def test_mac_key_is_private(self, tmp_path: Path) -> None:
        """A MAC key file is 0600 whatever the umask."""
        assert main(["keygen", "--out", str(tmp_path), "--mac"]) == 0
        assert mode(tmp_path / "auditmw.mac") == 0o600

    def test_force_over_a_readable_file_makes_it_private(self, tmp_path: Path) -> None:
        """Overwriting a world-readable key file with --force leaves a 0600 file."""
        (tmp_path / "auditmw.key").write_bytes(b"old")
        os.chmod(tmp_path / "auditmw.key", 0o644)
        assert main(["keygen", "--out", str(tmp_path), "--force"]) == 0
        assert mode(tmp_path / "auditmw.key") == 0o600
        assert (tmp_path / "auditmw.key").read_bytes() != b"old"

    def test_force_does_not_write_through_a_symlink(self, tmp_path: Path) -> None:
        """A symlink planted at the key's path is replaced, never written through."""
        target = tmp_path / "elsewhere"
        target.write_bytes(b"keep")
        (tmp_path / "auditmw.key").symlink_to(target)
        assert main(["keygen", "--out", str(tmp_path), "--force"]) == 0
        assert target.read_bytes() == b"keep"
        assert not (tmp_path / "auditmw.key").is_symlink()
        assert mode(tmp_path / "auditmw.key") == 0o600

    def test_without_force_a_symlink_is_refused(self, tmp_path: Path) -> None:
        """Without --force an existing name, even a dangling symlink, is refused."""
        (tmp_path / "auditmw.key").symlink_to(tmp_path / "missing")
        assert main(["keygen", "--out", str(tmp_path)]) == 2
        assert not (tmp_path / "missing").exists()

    def test_public_key_is_not_written_through_a_symlink(self, tmp_path: Path) -> None:
        """The public key file is created like the private one: a planted symlink is replaced."""
        target = tmp_path / "elsewhere"
        target.write_bytes(b"keep")
        (tmp_path / "auditmw.pub").symlink_to(target)
        assert main(["keygen", "--out", str(tmp_path), "--force"]) == 0
        assert target.read_bytes() == b"keep"
        assert b"PUBLIC KEY" in (tmp_path / "auditmw.pub").read_bytes()
        assert mode(tmp_path / "auditmw.pub") == 0o644

    def test_existing_public_key_refuses_before_writing_anything(self, tmp_path: Path) -> None:
        """Without --force an existing .pub refuses the pair: no orphan private key is left."""
        (tmp_path / "auditmw.pub").write_bytes(b"old")
        assert main(["keygen", "--out", str(tmp_path)]) == 2
        assert not (tmp_path / "auditmw.key").exists()
        assert (tmp_path / "auditmw.pub").read_bytes() == b"old"
