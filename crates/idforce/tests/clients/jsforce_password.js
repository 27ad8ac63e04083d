// jsforce's OAuth2 password grant against idforce, then identity() and revokeToken(), as a
// jsforce user would write it with only loginUrl changed.
const jsforce = require('jsforce');

async function main() {
  const [loginUrl, clientId, clientSecret, username, password] = process.argv.slice(2);
  const oauth2 = new jsforce.OAuth2({ loginUrl, clientId, clientSecret, redirectUri: 'http://localhost:1717/OauthRedirect' });
  const conn = new jsforce.Connection({ oauth2, version: '62.0' });
  const userInfo = await conn.login(username, password);
  const identity = await conn.identity();
  if (identity.username !== username) throw new Error(`identity says ${identity.username}`);
  await oauth2.revokeToken(conn.accessToken);
  let revokedWorks = true;
  try {
    await conn.identity();
  } catch (e) {
    revokedWorks = false;
  }
  let badLogin = null;
  try {
    await conn.login(username, 'definitely-wrong');
  } catch (e) {
    badLogin = `${e.name}: ${e.message}`;
  }
  console.log(JSON.stringify({
    userId: userInfo.id, organizationId: userInfo.organizationId, instanceUrl: conn.instanceUrl,
    identityUserId: identity.user_id, revokedWorks, badLogin,
  }));
}

main().catch((e) => { console.error(e); process.exit(1); });
