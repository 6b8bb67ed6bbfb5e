"""``aiguilleur serve``: its options and its one-line errors (the server itself runs in
test_browser.py and benchmarks/bench_api.py)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from aiguilleur.cli import app

runner = CliRunner()


def test_serve_is_a_command_with_its_options() -> None:
    res = runner.invoke(app, ["serve", "--help"])
    assert res.exit_code == 0
    for opt in (
        "--store",
        "--host",
        "--port",
        "--case",
        "--tokens",
        "--open-reads",
        "--cors-origin",
    ):
        assert opt in res.output


def test_a_bad_token_file_is_one_line_naming_it(tmp_path: Path) -> None:
    f = tmp_path / "tokens"
    f.write_text("root:a-very-long-token-0001\n")
    res = runner.invoke(app, ["serve", "--tokens", str(f), "--store", str(tmp_path / "x.db")])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and "tokens:1: role" in res.stderr
    assert "a-very-long-token" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.db").exists()


def test_a_store_in_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        ["serve", "--store", str(tmp_path / "nope" / "x.db"), "--case", "case14", "--no-fleet"],
        env={"AIGUILLEUR_TOKENS": "operator:a-very-long-token-0001"},
    )
    assert res.exit_code == 2
    assert "does not exist" in res.stderr and "Traceback" not in res.stderr


def test_without_tokens_a_private_token_file_is_made_beside_the_store(tmp_path: Path) -> None:
    import stat

    from aiguilleur.api import token_file

    f = tmp_path / "aiguilleur-tokens"
    tokens, made = token_file(f)
    assert made and len(tokens) == 1
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    again, made = token_file(f)
    assert not made and len(again) == 1
    token = f.read_text().splitlines()[-1].split(":", 2)[2]
    p = again.check(token)
    assert p is not None and p.role == "operator"
