"""The browser sign-in through the force's identity provider (authorization code flow with
PKCE), against the stand-in provider over real HTTP: its discovery document, its consent
page's form, its token endpoint and key set. A whole round trip, then each way it must fail."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from evidence.accounts.oidc import OidcVerifier
from evidence.accounts.oidc_login import LoginConfig, Pending, SignedIn, begin, code_challenge, finish
from evidence.errors import EvidenceError, Forbidden, Unauthorized, Unavailable
from evidence.settings import Settings
from tests.support.idp import AUDIENCE, IdentityProvider

CLIENT = "evidence-web"
REDIRECT = "https://evidence.example/app/login/oidc/callback"


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        provider.add_key("RS256")
        provider.register_client(CLIENT, REDIRECT)
        provider.sign_in_as("dc.jones@force.police.uk", role="auditor")
        yield provider


def login(idp: IdentityProvider, **options: Any) -> LoginConfig:
    return LoginConfig(idp.issuer, CLIENT, **options)


def verifier(idp: IdentityProvider) -> OidcVerifier:
    # The key set from the discovery document, as a deployment with only the issuer set finds it.
    return OidcVerifier(idp.issuer, AUDIENCE, ("RS256", "ES256"), refresh_cooldown=0)


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def approved(idp: IdentityProvider, config: LoginConfig, **begin_options: Any) -> tuple[Pending, dict[str, str]]:
    """Begin a sign-in and press Continue at the provider: the Pending and the callback's parameters."""
    url, pending = begin(config, REDIRECT, **begin_options)
    location = idp.approve(url)
    assert location.startswith(REDIRECT + "?")
    return pending, query(location)


def sign_in(idp: IdentityProvider, config: LoginConfig | None = None) -> SignedIn:
    config = config or login(idp)
    pending, params = approved(idp, config)
    return finish(config, verifier(idp), pending, params, REDIRECT)


def refused(error: type[EvidenceError], config: LoginConfig, idp: IdentityProvider, pending: Pending,
            params: dict[str, str]) -> str:
    with pytest.raises(error) as caught:
        finish(config, verifier(idp), pending, params, REDIRECT)
    message = caught.value.message
    assert pending.verifier not in message and (not params.get("code") or params["code"] not in message)
    return message


# -- the round trip -----------------------------------------------------------------------


def test_a_sign_in_gives_the_provider_identity_until_the_access_token_expires(idp: IdentityProvider) -> None:
    before = time.time()
    signed_in = sign_in(idp)
    identity = signed_in.identity
    assert (identity.issuer, identity.email, identity.role, identity.email_verified) == (
        idp.issuer, "dc.jones@force.police.uk", "auditor", True,
    )
    assert identity.subject.endswith(":dc.jones")
    assert before + 590 <= signed_in.expires_at.timestamp() <= time.time() + 610
    assert signed_in.expires_at.tzinfo is UTC
    (request,) = idp.token_requests
    assert (request["grant_type"], request["client_id"], request["redirect_uri"], request["auth"]) == (
        "authorization_code", CLIENT, REDIRECT, "none",
    )


def test_the_authorization_url_asks_for_a_code_with_an_s256_challenge(idp: IdentityProvider) -> None:
    url, pending = begin(login(idp, scopes="openid email"), REDIRECT)
    assert url.startswith(idp.authorization_url + "?")  # from the discovery document
    params = query(url)
    assert params == {
        "response_type": "code", "client_id": CLIENT, "redirect_uri": REDIRECT, "scope": "openid email",
        "state": pending.state, "nonce": pending.nonce,
        "code_challenge": code_challenge(pending.verifier), "code_challenge_method": "S256",
    }
    assert 43 <= len(pending.verifier) <= 128 and pending.verifier not in url
    assert len({pending.state, pending.nonce, pending.verifier}) == 3
    assert pending.state != begin(login(idp), REDIRECT)[1].state
    assert pending.verifier not in repr(pending)


def test_the_s256_challenge_matches_rfc_7636_appendix_b() -> None:
    assert code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_confidential_client_authenticates_with_http_basic(idp: IdentityProvider) -> None:
    idp.register_client(CLIENT, REDIRECT, secret="s3cret: with / odd+chars")
    assert sign_in(idp, login(idp, client_secret="s3cret: with / odd+chars")).identity.role == "auditor"
    assert idp.token_requests[-1]["auth"] == "basic" and "client_secret" not in idp.token_requests[-1]
    config = login(idp, client_secret="wrong")
    pending, params = approved(idp, config)
    assert "invalid_client" in refused(Unauthorized, config, idp, pending, params)


def test_the_endpoints_may_be_configured_instead_of_discovered(idp: IdentityProvider) -> None:
    config = login(idp, authorization_endpoint=idp.authorization_url + "?p=b2c_1_signin", token_endpoint=idp.token_url)
    url, _ = begin(config, REDIRECT)
    assert url.startswith(idp.authorization_url + "?p=b2c_1_signin&response_type=code&")


def test_settings_make_the_config_and_leave_it_off_without_a_client_id(idp: IdentityProvider) -> None:
    assert LoginConfig.from_settings(Settings(**idp.settings())) is None
    config = LoginConfig.from_settings(Settings(**idp.settings(oidc_client_id=CLIENT, oidc_sign_in_minutes=2)))
    assert config is not None and (config.client_id, config.scopes, config.max_age_seconds) == (
        CLIENT, "openid email profile", 120,
    )
    with pytest.raises(ValueError, match="ISSUER"):
        LoginConfig.from_settings(Settings(oidc_client_id=CLIENT))
    with pytest.raises(ValueError, match="openid"):
        LoginConfig.from_settings(Settings(**idp.settings(oidc_client_id=CLIENT, oidc_scopes="email profile")))


def test_a_pending_survives_a_round_trip_through_json_and_refuses_junk() -> None:
    pending = Pending("s", "n", "v" * 43, 1_700_000_000.5)
    assert Pending.from_dict(pending.to_dict()) == pending
    for junk in ({}, {**pending.to_dict(), "created_at": "soon"}, {**pending.to_dict(), "state": 1}):
        with pytest.raises(Unauthorized):
            Pending.from_dict(junk)


# -- the callback -------------------------------------------------------------------------


def test_a_callback_with_another_state_is_refused_before_the_code_is_redeemed(idp: IdentityProvider) -> None:
    config = login(idp)
    pending, params = approved(idp, config)
    for state in ("", pending.state[:-1] + ("A" if pending.state[-1] != "A" else "B"), None):
        forged = {**params, "state": state} if state is not None else {"code": params["code"]}
        assert "start again" in refused(Unauthorized, config, idp, pending, forged)
    assert idp.token_requests == []


def test_a_pending_older_than_the_sign_in_window_is_refused(idp: IdentityProvider) -> None:
    config = login(idp, max_age_seconds=300)
    pending, params = approved(idp, config, now=time.time() - 301)
    assert "too long" in refused(Unauthorized, config, idp, pending, params)
    from_the_future = dataclasses.replace(pending, created_at=time.time() + 3600)
    assert "too long" in refused(Unauthorized, config, idp, from_the_future, params)
    assert idp.token_requests == []


def test_the_providers_error_becomes_a_plain_message(idp: IdentityProvider) -> None:
    config = login(idp)
    url, pending = begin(config, REDIRECT)
    params = query(idp.approve(url, cancel=True))
    assert params == {"error": "access_denied", "state": pending.state}
    assert refused(Unauthorized, config, idp, pending, params) == "the identity provider did not sign you in (access_denied)"
    # Whatever else a forged callback says is not repeated.
    forged = {"state": pending.state, "error": "Call 0800 000 000 now", "error_description": "<b>urgent</b>"}
    message = refused(Unauthorized, config, idp, pending, forged)
    assert "0800" not in message and "urgent" not in message


def test_a_callback_without_a_code_is_refused(idp: IdentityProvider) -> None:
    config = login(idp)
    _, pending = begin(config, REDIRECT)
    assert "no authorization code" in refused(Unauthorized, config, idp, pending, {"state": pending.state})


# -- the token endpoint -------------------------------------------------------------------


def test_a_code_is_redeemed_once(idp: IdentityProvider) -> None:
    config = login(idp)
    pending, params = approved(idp, config)
    finish(config, verifier(idp), pending, params, REDIRECT)
    assert "invalid_grant" in refused(Unauthorized, config, idp, pending, params)


def test_a_code_redeemed_with_another_verifier_is_refused_and_spent(idp: IdentityProvider) -> None:
    config = login(idp)
    pending, params = approved(idp, config)
    stolen = dataclasses.replace(pending, verifier=begin(config, REDIRECT)[1].verifier)
    assert "invalid_grant" in refused(Unauthorized, config, idp, stolen, params)
    assert "invalid_grant" in refused(Unauthorized, config, idp, pending, params)


def test_an_expired_code_is_refused(idp: IdentityProvider) -> None:
    idp.code_seconds = 0
    config = login(idp)
    pending, params = approved(idp, config)
    time.sleep(0.01)
    assert "invalid_grant" in refused(Unauthorized, config, idp, pending, params)


def test_a_code_sent_back_to_another_redirect_uri_is_refused(idp: IdentityProvider) -> None:
    config = login(idp)
    pending, params = approved(idp, config)
    with pytest.raises(Unauthorized, match="invalid_grant"):
        finish(config, verifier(idp), pending, params, "https://evidence.example/elsewhere")


@pytest.mark.parametrize("status", [500, 503])
def test_a_failing_token_endpoint_is_unavailable(idp: IdentityProvider, status: int) -> None:
    config = login(idp)
    pending, params = approved(idp, config)
    idp.token_status = status
    assert "try again" in refused(Unavailable, config, idp, pending, params)


def test_a_token_endpoint_that_is_down_is_unavailable(idp: IdentityProvider) -> None:
    config = login(idp, timeout=2)
    pending, params = approved(idp, config)
    idp.stop()
    started = time.monotonic()
    with pytest.raises(Unavailable, match="cannot be reached"):
        finish(config, verifier(idp), pending, params, REDIRECT)
    assert time.monotonic() - started < 5


def test_a_provider_whose_discovery_document_cannot_be_read_is_unavailable(idp: IdentityProvider) -> None:
    config = login(idp)
    begin(config, REDIRECT)
    idp.stop()
    assert begin(config, REDIRECT)[0].startswith(idp.authorization_url)  # the endpoints are cached
    with pytest.raises(Unavailable, match="discovery"):
        begin(login(idp), REDIRECT)


# -- the tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize("changes", [
    {"nonce": "forged"},
    {"nonce": None},
    {"aud": "another-client"},
    {"aud": [CLIENT, "another-client"]},  # several audiences and no azp naming us
    {"aud": [CLIENT, "another-client"], "azp": "another-client"},
    {"azp": "another-client"},
    {"iss": "http://127.0.0.1:1/realms/other"},
    {"exp": int(time.time()) - 120},
    {"sub": None},
    {"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"},
], ids=["wrong nonce", "no nonce", "another audience", "several audiences", "another azp", "azp alone",
        "another issuer", "expired", "no subject", "wrong at_hash"])
def test_an_id_token_that_is_not_for_this_sign_in_is_refused(idp: IdentityProvider, changes: dict[str, Any]) -> None:
    idp.id_token_changes = changes
    config = login(idp)
    pending, params = approved(idp, config)
    assert "ID token is not valid" in refused(Unauthorized, config, idp, pending, params)


def test_several_audiences_are_accepted_when_azp_names_us(idp: IdentityProvider) -> None:
    idp.id_token_changes = {"aud": [CLIENT, "another-client"], "azp": CLIENT}
    assert sign_in(idp).identity.role == "auditor"


def test_an_id_token_signed_with_an_unpublished_key_is_refused(idp: IdentityProvider) -> None:
    config = login(idp)
    pending, params = approved(idp, config)
    idp.signing_key = idp.add_key("RS256", publish=False)
    assert "ID token is not valid" in refused(Unauthorized, config, idp, pending, params)


def test_the_access_token_decides_the_role(idp: IdentityProvider) -> None:
    idp.sign_in_as("pc.brown@force.police.uk", role=None)
    config = login(idp)
    pending, params = approved(idp, config)
    assert "names no role" in refused(Forbidden, config, idp, pending, params)


def test_an_unverified_address_is_reported_as_such(idp: IdentityProvider) -> None:
    idp.sign_in_as("pc.brown@force.police.uk", email_verified=False)
    assert sign_in(idp).identity.email_verified is False


# -- the stand-in provider itself ----------------------------------------------------------


def test_the_provider_never_redirects_to_an_unregistered_address(idp: IdentityProvider) -> None:
    url, _ = begin(login(idp), "https://attacker.example/callback")
    page = requests.get(url, allow_redirects=False, timeout=5)
    assert page.status_code == 400 and "Location" not in page.headers


def test_the_provider_page_has_one_button_to_continue_as_the_user(idp: IdentityProvider) -> None:
    url, _ = begin(login(idp), REDIRECT)
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.text.count("Continue as dc.jones@force.police.uk") == 1


def test_the_provider_refuses_a_request_without_pkce(idp: IdentityProvider) -> None:
    url, _ = begin(login(idp), REDIRECT)
    plain = {**query(url), "code_challenge_method": "plain"}
    answer = requests.get(idp.authorization_url, params=plain, allow_redirects=False, timeout=5)
    assert answer.status_code == 302 and query(answer.headers["Location"])["error"] == "invalid_request"


def test_expiry_is_the_access_tokens(idp: IdentityProvider) -> None:
    idp.token_seconds = 120
    expires = sign_in(idp).expires_at
    assert abs((expires - datetime.now(UTC)).total_seconds() - 120) < 5
