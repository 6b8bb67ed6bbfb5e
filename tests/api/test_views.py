"""The console's views against outside references, and the token file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aiguilleur.errors import ValidationError


@pytest.mark.parametrize("case", ["case14", pytest.param("case118", marks=pytest.mark.slow)])
def test_worst_post_contingency_loading_matches_pandapower_dc_per_outage(case: str) -> None:
    """Outside reference: pandapower's DC power flow with each branch out, one at a time."""
    pp = pytest.importorskip("pandapower")
    from aiguilleur.data import bundled_case_path
    from aiguilleur.grid import read_matpower
    from aiguilleur.grid.pandapower_io import to_pandapower
    from aiguilleur.grid.sensitivity import bridges
    from aiguilleur.ops.views import _worst_n1_dc
    from aiguilleur.ops.world import emergency_network

    net = read_matpower(bundled_case_path(case))
    ppnet = to_pandapower(net)

    def flows() -> np.ndarray:
        pp.rundcpp(ppnet)
        p = np.zeros(net.n_branch)
        p[ppnet.res_line.index] = ppnet.res_line.p_from_mw
        p[ppnet.res_trafo.index] = ppnet.res_trafo.p_hv_mw
        return p

    base = flows()
    worst, which = _worst_n1_dc(net, base)
    rate = emergency_network(net).branch.rate_c_mva
    cut = set(bridges(net).tolist())
    ref = np.zeros(net.n_branch)
    post_of: dict[int, np.ndarray] = {}
    for k in range(net.n_branch):
        if k in cut or net.branch.in_service[k] == 0:
            continue
        table = "line" if k in ppnet.line.index else "trafo"
        getattr(ppnet, table).loc[k, "in_service"] = False
        try:
            post = np.abs(flows())
        finally:
            getattr(ppnet, table).loc[k, "in_service"] = True
        post[k] = 0.0
        post_of[k] = post
        ref = np.maximum(ref, post)
    ref_pct = np.where(rate > 0, 100.0 * ref / np.where(rate > 0, rate, 1.0), 0.0)
    np.testing.assert_allclose(worst, ref_pct, rtol=1e-6, atol=1e-6)
    # the outage named causes that loading (parallel branches tie: any of them will do)
    for line in np.flatnonzero(ref > 1e-6):
        assert post_of[int(which[line])][line] == pytest.approx(ref[line], rel=1e-6)


def test_tokens_from_a_file_and_the_environment(tmp_path: Path) -> None:
    from aiguilleur.api import Principal, load_tokens

    f = tmp_path / "tokens"
    f.write_text(
        "# operators\noperator:alice:a-very-long-token-0001\nviewer:b-very-long-token-0002\n\n"
    )
    t = load_tokens(f)
    assert len(t) == 2
    assert t.check("a-very-long-token-0001") == Principal("alice", "operator")
    assert t.check("b-very-long-token-0002") == Principal("viewer-2", "viewer")
    assert t.check("a-very-long-token-000") is None and t.check("") is None
    env = {
        "AIGUILLEUR_TOKENS": "operator:carol:c-very-long-token-0003,viewer:d-very-long-token-0004"
    }
    t = load_tokens(environ=env)
    assert t.check("c-very-long-token-0003") == Principal("carol", "operator")
    assert len(load_tokens(environ={})) == 0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("admin:x-very-long-token-0001", "tokens:1: role"),
        ("operator:short-one", "tokens:1: token"),
        ("\noperator", "tokens:2: expected role:token"),
        ("operator:a-very-long-token-0001\nviewer:a-very-long-token-0001", "twice"),
    ],
)
def test_bad_token_files_name_the_line_never_the_token(
    tmp_path: Path, text: str, needle: str
) -> None:
    from aiguilleur.api import load_tokens

    f = tmp_path / "tokens"
    f.write_text(text)
    with pytest.raises(ValidationError, match=needle) as e:
        load_tokens(f)
    assert "very-long-token" not in str(e.value) and "short-one" not in str(e.value)
    with pytest.raises(ValidationError, match="no such token file"):
        load_tokens(tmp_path / "missing")


def test_api_options_are_validated() -> None:
    from aiguilleur.api import ApiOptions

    with pytest.raises(ValidationError, match="max_body_bytes"):
        ApiOptions(max_body_bytes=0)
    with pytest.raises(ValidationError, match="cors_origins"):
        ApiOptions(cors_origins=("*",))
    with pytest.raises(ValidationError, match="rate_per_s"):
        ApiOptions(rate_per_s=-1)
