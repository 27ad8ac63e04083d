"""Authlib as an OpenID Connect relying party, starting from the discovery URL: code flow with
PKCE and nonce, the id_token verified with authlib.jose against the JWKS, then userinfo."""
import html
import json
import re
import sys

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken

url, client_id, client_secret, redirect_uri, username, password = sys.argv[1:7]
meta = requests.get(f"{url}/.well-known/openid-configuration").json()
assert meta["issuer"] == url, meta


def hidden(page):
    fields = re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page)
    return [(html.unescape(k), html.unescape(v)) for k, v in fields]


client = OAuth2Session(client_id, client_secret, scope="openid email profile", redirect_uri=redirect_uri,
                       code_challenge_method="S256")
verifier, nonce = generate_token(64), generate_token(20)
auth_url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)

browser = requests.Session()
login = browser.get(auth_url, allow_redirects=False)
after = browser.post(f"{url}/", data=hidden(login.text) + [("username", username), ("pw", password)], allow_redirects=False)
consent = browser.get(url + after.headers["Location"], allow_redirects=False)
approved = browser.post(f"{url}/setup/secur/RemoteAccessAuthorizationPage.apexp",
                        data=hidden(consent.text) + [("decision", "allow")], allow_redirects=False)
token = client.fetch_token(meta["token_endpoint"], authorization_response=approved.headers["Location"], code_verifier=verifier)

keys = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"]).json())
claims = jwt.decode(token["id_token"], keys, claims_cls=CodeIDToken,
                    claims_options={"iss": {"values": [meta["issuer"]]}, "aud": {"values": [client_id]}},
                    claims_params={"nonce": nonce, "access_token": token["access_token"]})
claims.validate()
info = client.get(meta["userinfo_endpoint"]).json()
print(json.dumps({"sub_matches": info["sub"] == claims["sub"], "email": claims["email"], "name": info["name"]}))
