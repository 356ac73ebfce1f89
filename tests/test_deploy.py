"""deploy/systemd/: the unit files run the commands app/launcher.py runs,
read /etc/ticketdrop/env, restart always, and pass `systemd-analyze verify`
(when this machine has it) with the install path pointed at this checkout."""

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from app import launcher

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "deploy" / "systemd"
INSTALL = "/opt/ticketdrop"  # where the units expect the checkout and its .venv
# The web unit's numbers, as launcher settings (the unit's comment says so).
WEB = {"HOST": "0.0.0.0", "PORT": "8000", "WEB_WORKERS": "4", "WEB_THREADS": "9"}


def service(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(UNITS / name)
    return parser["Service"]


def exec_start(name: str) -> list[str]:
    """ExecStart as the launcher would spell it: the install's .venv/bin
    read as this virtualenv's bin."""
    words = shlex.split(service(name)["ExecStart"])
    venv_bin = f"{INSTALL}/.venv/bin/"
    assert words[0].startswith(venv_bin), words[0]
    return [str(launcher.BIN / words[0][len(venv_bin) :]), *words[1:]]


def test_the_units_run_the_launchers_commands():
    named = launcher.commands(launcher.server_settings(WEB))
    assert exec_start("ticketdrop-web.service") == named["web"]
    assert exec_start("ticketdrop-worker@.service") == named["worker"]
    assert exec_start("ticketdrop-scheduler.service") == named["scheduler"]


@pytest.mark.parametrize("name", sorted(p.name for p in UNITS.glob("*.service")))
def test_every_unit_reads_the_env_file_and_restarts(name):
    unit = service(name)
    assert unit["EnvironmentFile"] == "/etc/ticketdrop/env"
    assert unit["Restart"] == "always"
    assert unit["WorkingDirectory"] == INSTALL


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze here")
def test_systemd_accepts_the_units(tmp_path):
    """verify checks every key and that ExecStart's program exists: the
    units are copied with the install path pointed at this checkout (the
    worker template as its instance @1)."""
    copies = []
    for path in UNITS.glob("*.service"):
        text = path.read_text().replace(f"{INSTALL}/.venv/bin/", f"{launcher.BIN}/")
        copy = tmp_path / path.name.replace("@.", "@1.")
        copy.write_text(text.replace(INSTALL, str(ROOT)))
        copies.append(str(copy))
    assert len(copies) == 3
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *copies],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_example_environment_lists_every_setting():
    """deploy/systemd/env.example names each setting app/config.py reads
    (set, or commented with its default), and nothing else."""
    source = (ROOT / "app" / "config.py").read_text()
    read = set(re.findall(r'env(?:\.get|iron\.get)?\("([A-Z_]+)"', source))
    example = (UNITS / "env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z_]+)=", example, re.MULTILINE))
    assert read and listed == read, (sorted(read - listed), sorted(listed - read))
