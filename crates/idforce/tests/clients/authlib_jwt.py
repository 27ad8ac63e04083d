"""Python clients against idforce's JWT bearer flow: Authlib's RFC 7523 AssertionSession, and
a PyJWT-built assertion in simple-salesforce's style (aud login.salesforce.com, exp a string)."""
import json
import sys
import time

import jwt
import requests
from authlib.integrations.requests_client import AssertionSession

url, client_id, username, key_file = sys.argv[1:5]
key = open(key_file).read()
token_url = f"{url}/services/oauth2/token"

session = AssertionSession(
    token_endpoint=token_url,
    grant_type=AssertionSession.JWT_BEARER_GRANT_TYPE,
    issuer=client_id,
    audience=token_url,
    subject=username,
    key=key,
    header={"alg": "RS256"},
)
resources = session.get(f"{url}/services/data/v62.0/")
resources.raise_for_status()
identity = session.get(resources.json()["identity"])
identity.raise_for_status()

claims = {"iss": client_id, "sub": username, "aud": "https://login.salesforce.com", "exp": str(int(time.time()) + 180)}
assertion = jwt.encode(claims, key, algorithm="RS256", headers={"alg": "RS256"})
r = requests.post(token_url, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
r.raise_for_status()
again = requests.post(token_url, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})

print(json.dumps({
    "authlib_username": identity.json()["username"],
    "pyjwt_token_type": r.json()["token_type"],
    "replay": again.json(),
}))
