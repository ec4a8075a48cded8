// The benchmark's peer: oidc-provider issuing RS256 JWT access tokens by client credentials,
// with nothing persisted (the default in-memory adapter; JWT access tokens are not stored).
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const port = Number(process.env.PEER_PORT || 18484);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: "peer", alg: "RS256", use: "sig" };

const provider = new Provider(issuer, {
  clients: [{
    client_id: "bench",
    client_secret: "bench-secret",
    grant_types: ["client_credentials"],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  jwks: { keys: [jwk] },
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => "urn:bench:api",
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: "api",
        accessTokenFormat: "jwt",
        accessTokenTTL: 3600,
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
  scopes: ["api"],
});
provider.listen(port, "127.0.0.1", () => console.log(`peer listening on ${issuer}`));
