import { describe, expect, it } from "vitest";
import { redact } from "./redact.ts";

describe("redact", () => {
  it.each([
    ["Authorization: Bearer eyJhbGciOi.payload.sig", "Authorization: [REDACTED]", "eyJ"],
    ["authorization=Basic dXNlcjpwYXNz", "authorization=[REDACTED]", "dXNl"],
    ['{"authorization":"Bearer abc"}', '{"authorization":"[REDACTED]"}', "abc"],
    ["sent Bearer abc.def-ghi_jkl~ to host", "sent Bearer [REDACTED] to host", "abc"],
    ["Basic dXNlcjpwYXNzd29yZA==, then", "Basic [REDACTED], then", "dXNl"],
    ["https://auth.example/token?scope=x&token=s3cr3t&b=1", "https://auth.example/token?scope=x&token=[REDACTED]&b=1", "s3cr3t"],
    ['{"token":"t0k","access_token": "acc","expires_in":300}', '{"token":"[REDACTED]","access_token": "[REDACTED]","expires_in":300}', '"acc"'],
    ["grant_type=password&username=u&password=hunter2&client_id=ferry", "grant_type=password&username=u&password=[REDACTED]&client_id=ferry", "hunter2"],
    ["grant_type=refresh_token&refresh_token=rt-123&service=s", "grant_type=refresh_token&refresh_token=[REDACTED]&service=s", "rt-123"],
    ['{"identitytoken":"idt","auth":"YTpi"}', '{"identitytoken":"[REDACTED]","auth":"[REDACTED]"}', "YTpi"],
    ["Secret: abc", "Secret: [REDACTED]", "abc"],
    ["https://user:pa55@reg.example/v2/", "https://[REDACTED]@reg.example/v2/", "pa55"],
  ])("%s", (input, want, secret) => {
    const out = redact(input);
    expect(out).toBe(want);
    expect(out).not.toContain(secret);
  });

  it("leaves challenges and ordinary text alone", () => {
    const ch = 'Basic realm="Registry Realm", Bearer realm="https://auth.docker.io/token",service="registry.docker.io"';
    expect(redact(ch)).toBe(ch);
    expect(redact("the token server rejected the credentials (HTTP 401)")).toBe("the token server rejected the credentials (HTTP 401)");
    expect(redact("expires_in=300&scope=repository:a:pull")).toBe("expires_in=300&scope=repository:a:pull");
  });
});
