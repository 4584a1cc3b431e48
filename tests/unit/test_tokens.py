"""CLI and web login tokens: signed, scoped to one environment, short-lived, web tokens used once."""
from __future__ import annotations

from pathlib import Path

import pytest

from airdock_runtime import tokens
from airdock.core.airflow_access import airflow_identity, airflow_role, iam_identity
from airdock.core.errors import AccessDenied, ValidationError
from airdock.core.ports import Caller

KEY = tokens.new_key()
NOW = 1_800_000_000.0
ROOT = Caller("AKIAROOT", "arn:aws:iam::000000000000:root")


def cli_token(key: str = KEY, env: str = "prod", now: float = NOW) -> str:
    return tokens.mint_cli_token(key, env, "root", "root", "Admin", now=now)


def test_a_fresh_cli_token_verifies_and_carries_the_caller_and_role() -> None:
    claims = tokens.verify(KEY, cli_token(), kind=tokens.CLI, environment="prod", now=NOW + 1)
    assert (claims.environment, claims.iam_identity, claims.role) == ("prod", "root", "Admin")
    assert claims.expires_at - claims.issued_at == 60


def test_a_cli_token_is_refused_61_seconds_after_it_was_issued() -> None:
    token = cli_token()
    tokens.verify(KEY, token, kind=tokens.CLI, environment="prod", now=NOW + 59)
    with pytest.raises(tokens.TokenError, match="expired") as refused:
        tokens.verify(KEY, token, kind=tokens.CLI, environment="prod", now=NOW + 61)
    assert refused.value.status == 401


def test_a_token_signed_with_another_environments_key_is_refused() -> None:
    with pytest.raises(tokens.TokenError, match="signature") as refused:
        tokens.verify(tokens.new_key(), cli_token(), kind=tokens.CLI, environment="prod", now=NOW)
    assert refused.value.status == 401


def test_a_valid_token_named_for_another_environment_is_forbidden() -> None:
    with pytest.raises(tokens.TokenError, match="issued for environment staging") as refused:
        tokens.verify(KEY, cli_token(env="staging"), kind=tokens.CLI, environment="prod", now=NOW)
    assert refused.value.status == 403


@pytest.mark.parametrize("garbage", ["", "abc", "v1.x.y", "v2.a.b", "v1..", "v1.%%%.sig", "Bearer v1.a.b"])
def test_garbled_tokens_are_refused_not_crashed_on(garbage: str) -> None:
    with pytest.raises(tokens.TokenError):
        tokens.verify(KEY, garbage, kind=tokens.CLI, environment="prod", now=NOW)


def test_a_tampered_claim_breaks_the_signature() -> None:
    version, body, sig = cli_token().split(".")
    forged = tokens.mint("other-key", tokens.TokenClaims("cli", "prod", "root", "root", "Admin", NOW, NOW + 9999, "x"))
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify(KEY, f"{version}.{forged.split('.')[1]}.{sig}", kind=tokens.CLI, environment="prod", now=NOW)


def test_a_cli_token_is_not_a_web_login_token() -> None:
    with pytest.raises(tokens.TokenError, match="web token is required"):
        tokens.verify(KEY, cli_token(), kind=tokens.WEB, environment="prod", now=NOW)


def test_a_token_from_the_future_beyond_the_leeway_is_refused() -> None:
    with pytest.raises(tokens.TokenError, match="not valid yet"):
        tokens.verify(KEY, cli_token(now=NOW + 30), kind=tokens.CLI, environment="prod", now=NOW)


def web_claims(now: float = NOW) -> tokens.TokenClaims:
    token = tokens.mint_web_token(KEY, "prod", "root", "root", "Viewer", now=now)
    return tokens.verify(KEY, token, kind=tokens.WEB, environment="prod", now=now)


def test_a_web_login_token_works_once_and_its_replay_is_forbidden_by_every_guard_sharing_the_record() -> None:
    used = tokens.MemoryUsedTokens()
    claims = web_claims()
    tokens.ReplayGuard(used, clock=lambda: NOW).use(claims)
    for guard in (tokens.ReplayGuard(used, clock=lambda: NOW), tokens.ReplayGuard(used, clock=lambda: NOW + 30)):
        with pytest.raises(tokens.TokenError, match="already used") as refused:
            guard.use(claims)
        assert refused.value.status == 403


def test_a_used_token_is_remembered_until_its_expiry_plus_the_clock_leeway() -> None:
    now = [NOW]
    guard = tokens.ReplayGuard(tokens.MemoryUsedTokens(), clock=lambda: now[0])
    claims = web_claims()
    guard.use(claims)
    now[0] = claims.expires_at + tokens.CLOCK_LEEWAY_S - 0.5
    with pytest.raises(tokens.TokenError, match="already used"):
        guard.use(claims)
    now[0] = claims.expires_at + tokens.CLOCK_LEEWAY_S + 0.5
    guard.use(claims)  # forgotten: verify() refuses it as expired long before this


def test_the_offset_clock_reads_its_file_on_every_call(tmp_path: Path) -> None:
    offset = tmp_path / "offset"
    clock = tokens.offset_clock(str(offset))
    assert abs(clock() - tokens.time.time()) < 1
    offset.write_text("61")
    assert clock() - tokens.time.time() > 60
    assert tokens.offset_clock(None) is tokens.time.time


# ---- who the caller is in Airflow -------------------------------------------------------------------

@pytest.mark.parametrize(("arn", "identity"), [
    ("arn:aws:iam::000000000000:root", "root"),
    ("arn:aws:sts::123456789012:assumed-role/Admin/your-name", "assumed-role/Admin/your-name"),
    ("arn:aws:iam::123456789012:user/alice", "user/alice"),
])
def test_identities_are_reported_as_mwaa_names_them(arn: str, identity: str) -> None:
    assert iam_identity(arn) == identity
    assert airflow_identity(arn) == identity


def test_the_airflow_user_name_fits_airflows_64_characters() -> None:
    assert len(airflow_identity("arn:aws:sts::1:assumed-role/" + "r" * 80 + "/s")) == 64


def test_the_account_root_is_admin_without_a_policy() -> None:
    assert airflow_role(ROOT, "prod") == "Admin"


def test_a_policy_entry_overrides_the_role_per_key_and_per_environment() -> None:
    policy = {"AKIAROOT": {"prod": "viewer", "*": "Op"}}
    assert airflow_role(ROOT, "prod", policy) == "Viewer"
    assert airflow_role(ROOT, "dev", policy) == "Op"
    assert airflow_role(ROOT, "dev", {"arn:aws:iam::000000000000:root": "User"}) == "User"


def test_a_caller_without_a_policy_entry_gets_no_airflow_access() -> None:
    with pytest.raises(AccessDenied):
        airflow_role(Caller("AKIAOTHER", "arn:aws:iam::000000000000:user/bob"), "prod")


def test_invoke_rest_api_without_an_airflow_role_is_denied_in_mwaas_words() -> None:
    """The Amazon provider's MwaaHook falls back to a web login session on exactly this message."""
    with pytest.raises(AccessDenied) as denied:
        airflow_role(Caller("AKIAOTHER", "arn:aws:iam::000000000000:user/bob"), "prod", {}, "InvokeRestApi")
    assert denied.value.message == "No Airflow role granted in IAM."


def test_an_unknown_role_in_the_policy_is_reported() -> None:
    with pytest.raises(ValidationError, match="unknown role"):
        airflow_role(ROOT, "prod", {"AKIAROOT": "Superuser"})
