// jsforce's SOAP login (Connection.login without an OAuth2 client, spec §12.17) against
// idforce, then identity(), as a jsforce user would write it with only loginUrl changed.
const jsforce = require('jsforce');

async function main() {
  const [loginUrl, username, password] = process.argv.slice(2);
  const conn = new jsforce.Connection({ loginUrl, version: '62.0' });
  const userInfo = await conn.login(username, password);
  const identity = await conn.identity();
  let badLogin = null;
  try {
    await new jsforce.Connection({ loginUrl, version: '62.0' }).login(username, 'definitely-wrong');
  } catch (e) {
    badLogin = `${e.name}: ${e.message}`;
  }
  console.log(JSON.stringify({
    userId: userInfo.id, organizationId: userInfo.organizationId, instanceUrl: conn.instanceUrl,
    sessionId: conn.accessToken, identityUsername: identity.username, badLogin,
  }));
}

main().catch((e) => { console.error(e); process.exit(1); });
