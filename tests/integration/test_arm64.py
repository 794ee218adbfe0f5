"""`envbuild image --platform linux/arm64` built and proven for real on an x86_64 engine,
under qemu user emulation (Debian's qemu-user-static, registered with binfmt_misc).

No registry is reachable, so the arm64 base is made here the way
../shared/tools/docker-engine makes the amd64 ones: `debootstrap --foreign --arch=arm64`
downloads Debian bookworm's arm64 packages (python3 3.11, pip, ca-certificates) and the
test unpacks them into a root filesystem (nothing arm64 runs to do it), with this
machine's CA bundle so pip inside the build reaches the index. That base exists only in
this engine: BuildKit would look it up in a registry, so ``--builder auto`` takes the
classic builder and says why.

The model is the corpus's MLflow 3.17.2 models-from-code pyfunc, as MLflow wrote it (no
compiled extension of its own; numpy and pandas wheels for aarch64 from PyPI). The image
must be arm64, its interpreter must report aarch64, and the emulated smoke test must
match the predictions MLflow gave.

Where binfmt_misc cannot be mounted or qemu-aarch64 registered, the test is skipped with
that reason in one line, and CI lets that one skip pass (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envbuild._adapters import docker as _docker
from tests.helpers import ROOT, run_envbuild

pytestmark = [pytest.mark.docker, pytest.mark.network, pytest.mark.slow]

MODEL = ROOT / "tests" / "corpus" / "models" / "mlflow3.17.2-py3.11-pyfunc-models-from-code"
BASE = "envbuild-test/debian-python:3.11-arm64"
TAG = "envbuild-arm64-test:1"
# its images are this platform's: tests/conftest.py runs this module beside the others
IMAGE_PLATFORM = "linux/arm64"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
SKIP = "arm64 emulation unavailable: "  # tests/conftest.py lets this skip pass in CI
PACKAGES = "python3,python3-pip,ca-certificates"


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def emulation_problem() -> str | None:
    """Why arm64 binaries cannot run here (None: they can), registering qemu-aarch64 with
    binfmt_misc first where the tools and the privilege allow it."""
    if platform.machine() in ("aarch64", "arm64"):
        return None
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists():
        if not (BINFMT / "register").exists():
            _run("mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT))
        if shutil.which("update-binfmts"):
            _run("update-binfmts", "--enable", "qemu-aarch64")
    if not entry.exists():
        if not (BINFMT / "register").exists():
            return f"{SKIP}binfmt_misc is not mounted at {BINFMT} and could not be"
        return f"{SKIP}qemu-aarch64 is not registered (apt-get install qemu-user-static binfmt-support)"
    text = entry.read_text()
    if not text.startswith("enabled"):
        return (
            f"{SKIP}qemu-aarch64 is registered but disabled (update-binfmts --enable qemu-aarch64)"
        )
    flags = next((line.split()[1] for line in text.splitlines() if line.startswith("flags:")), "")
    if "F" not in flags:
        return f"{SKIP}qemu-aarch64 is registered without the F flag, so containers cannot use it"
    return None


def _ca_bundle() -> str:
    import ssl

    paths = ssl.get_default_verify_paths()
    return os.environ.get("SSL_CERT_FILE") or paths.cafile or paths.openssl_cafile


def make_base(client: object) -> None:
    """BASE: Debian bookworm arm64 with python3 3.11 and pip, tagged for linux/arm64."""
    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is missing (../shared/tools/docker-engine installs it)")
    with tempfile.TemporaryDirectory(prefix="envbuild-arm64-") as tmp:
        root = Path(tmp) / "rootfs"
        # the mirror drops a download now and then (CI: "Couldn't download packages: bash");
        # each try starts from an empty root, as debootstrap expects
        for attempt in range(3):
            shutil.rmtree(root, ignore_errors=True)
            done = _run(
                "debootstrap", "--foreign", "--arch=arm64", "--variant=minbase",
                f"--include={PACKAGES}", "bookworm", str(root), "http://deb.debian.org/debian",
            )  # fmt: skip
            if done.returncode == 0:
                break
            time.sleep(5 * (attempt + 1))
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        # the second stage would run arm64 maintainer scripts under emulation for minutes;
        # unpacking what it downloaded is enough for an image that runs python3
        for deb in sorted((root / "var/cache/apt/archives").glob("*.deb")):
            unpacked = _run("dpkg-deb", "-x", str(deb), str(root))
            assert unpacked.returncode == 0, unpacked.stderr
            deb.unlink()
        shutil.rmtree(root / "debootstrap", ignore_errors=True)
        shutil.copyfile(_ca_bundle(), root / "etc/ssl/certs/ca-certificates.crt")
        context = Path(tmp) / "context"
        context.mkdir()
        tarred = _run("tar", "-C", str(root), "-cf", str(context / "rootfs.tar"), ".")
        assert tarred.returncode == 0, tarred.stderr
        (context / "Dockerfile").write_text(
            "FROM scratch\nADD rootfs.tar /\n"
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8\n"
            'CMD ["python3"]\n'
        )
        # the SDK's build takes --platform for FROM scratch, so the image says arm64
        client.images.build(path=str(context), tag=BASE, platform="linux/arm64", rm=True)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def arm64_base() -> Iterator[str]:
    if problem := emulation_problem():
        pytest.skip(problem)
    client = _docker.client()
    if _docker.image_id(client, BASE) is None:
        make_base(client)
    machine = subprocess.run(
        ["docker", "run", "--rm", BASE, "python3", "-c", "import platform; print(platform.machine())"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert machine.stdout.strip() == "aarch64", machine.stderr
    yield BASE


def test_an_arm64_image_builds_and_is_proven_under_emulation(arm64_base: str) -> None:
    done = run_envbuild(
        "image", MODEL, "--platform", "linux/arm64", "--base-image", arm64_base,
        "-t", TAG, "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    # BuildKit exists here (Debian's docker.io CLI), yet auto chose the classic builder
    assert "builder: the classic builder, since " + arm64_base in done.stderr
    result = json.loads(done.stdout)["result"]
    assert result["plan"]["platform"] == "linux/arm64"
    assert result["image"]["builder"] == "legacy"
    assert result["smoke"]["proof"] == "matched stored predictions"
    client = _docker.client()
    attrs = client.api.inspect_image(TAG)
    assert attrs["Architecture"] == "arm64"
    assert attrs["Config"]["Labels"]["io.envbuild.platform"] == "linux/arm64"
    machine = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "python", TAG, "-c",
         "import platform, numpy; print(platform.machine(), numpy.__name__)"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert machine.stdout.split() == ["aarch64", "numpy"], machine.stderr
