"""Authlib's OAuth2Session completes the web server flow with PKCE against idforce: it builds
the authorize URL, a plain HTTP session fills in the login and approval forms the way a
person would, and Authlib redeems the code (client_secret_basic) and refreshes."""
import html
import json
import re
import sys

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

url, client_id, client_secret, redirect_uri, username, password = sys.argv[1:7]


def hidden(page):
    fields = re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page)
    return [(html.unescape(k), html.unescape(v)) for k, v in fields]


client = OAuth2Session(
    client_id, client_secret, scope="api refresh_token", redirect_uri=redirect_uri,
    code_challenge_method="S256",
)
verifier = generate_token(64)
auth_url, state = client.create_authorization_url(f"{url}/services/oauth2/authorize", code_verifier=verifier)

browser = requests.Session()
login = browser.get(auth_url, allow_redirects=False)
assert "startURL" in login.text, login.text
after_login = browser.post(f"{url}/", data=hidden(login.text) + [("username", username), ("pw", password)], allow_redirects=False)
assert after_login.status_code == 302, after_login.text
consent = browser.get(url + after_login.headers["Location"], allow_redirects=False)
assert "Allow Access?" in consent.text, consent.text
approved = browser.post(
    f"{url}/setup/secur/RemoteAccessAuthorizationPage.apexp",
    data=hidden(consent.text) + [("decision", "allow")], allow_redirects=False,
)
callback = approved.headers["Location"]

token = client.fetch_token(f"{url}/services/oauth2/token", authorization_response=callback, code_verifier=verifier)
refreshed = client.refresh_token(f"{url}/services/oauth2/token", refresh_token=token["refresh_token"])
identity = client.get(token["id"]).json()
print(json.dumps({
    "state_matches": f"state={state}" in callback,
    "scope": token["scope"],
    "refreshed_scope": refreshed["scope"],
    "username": identity["username"],
}))
