// The peer of the benchmark: panva's node-oidc-provider (OpenID Certified), configured for
// the flows it shares with idforce: client credentials, introspection and revocation. It keeps
// its tokens in memory (its default adapter). `bench/run` installs oidc-provider@9 beside this
// file in a temporary folder.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: 'bench-client',
      client_secret: process.env.BENCH_CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
      scope: 'api',
    },
  ],
  scopes: ['api'],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    devInteractions: { enabled: false },
  },
});
provider.listen(port, '127.0.0.1');
