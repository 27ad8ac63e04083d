"""simple-salesforce's SOAP login (username, password and security token) against idforce.
Its login URL is https://<domain>.salesforce.com unless `scratch_url` names another host, which
is how it is pointed at idforce here; the envelope and the parsing of the answer are its own."""
import json
import sys

import requests
from simple_salesforce import SalesforceAuthenticationFailed, SalesforceLogin

url, username, password, token = sys.argv[1:5]
session_id, instance = SalesforceLogin(
    username=username, password=password, security_token=token, scratch_url=url
)
me = requests.get(
    f"{url}/services/oauth2/userinfo", headers={"Authorization": f"Bearer {session_id}"}
)
bad = None
try:
    SalesforceLogin(username=username, password=password, security_token="WRONG", scratch_url=url)
except SalesforceAuthenticationFailed as e:
    bad = {"code": e.code, "message": str(e)}
print(json.dumps({
    "sessionId": session_id, "instance": instance, "userinfoStatus": me.status_code,
    "userinfoUser": me.json().get("user_id"), "badLogin": bad,
}))
