"""Authlib's private_key_jwt client authentication (RFC 7523 §2.2) against idforce: client
credentials with a signed client assertion in place of the secret, then a replay of that same
assertion (its jti is spent)."""
import json
import sys

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT

url, client_id, key_file = sys.argv[1:4]
key = open(key_file).read()
token_url = f"{url}/services/oauth2/token"

sent = []


def remember(request):
    sent.append(request.body)


session = OAuth2Session(
    client_id,
    key,
    token_endpoint_auth_method=PrivateKeyJWT(token_url, alg="RS256"),
)
session.hooks["response"].append(lambda r, *a, **k: remember(r.request))
token = session.fetch_token(token_url, grant_type="client_credentials")

# The very request Authlib sent, sent again.
replay = requests.post(
    token_url,
    data=sent[0],
    headers={"Content-Type": "application/x-www-form-urlencoded"},
)

print(json.dumps({
    "token_type": token["token_type"],
    "has_access_token": bool(token.get("access_token")),
    "sent_assertion": "client_assertion=" in (sent[0] or ""),
    "replay_status": replay.status_code,
    "replay": replay.json(),
}))
