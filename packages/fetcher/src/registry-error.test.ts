import { describe, expect, it } from "vitest";
import { DeniedError, DigestMismatchError, FerryError, NotFoundError, RangeNotSatisfiableError, SizeMismatchError, TooManyRequestsError, UnauthorizedError, UnavailableError } from "@ferry/core";
import { parseRegistryErrors, registryError } from "./registry-error.ts";

describe("registryError", () => {
  it("maps registry codes and keeps status, method and URL", () => {
    const err = registryError({
      status: 404,
      method: "GET",
      url: "http://r/v2/x/manifests/v1",
      registryErrors: parseRegistryErrors(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] })),
    });
    expect(err.code).toBe("NotFound");
    expect(err.details).toMatchObject({ status: 404, method: "GET", url: "http://r/v2/x/manifests/v1", registryCodes: ["MANIFEST_UNKNOWN"] });
    expect(err.message).toContain("MANIFEST_UNKNOWN: manifest unknown");
  });

  it("scrubs credentials a registry echoes back in its error messages", () => {
    const body = JSON.stringify({
      errors: [
        { code: "DENIED", message: "token Bearer eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.sig rejected; Authorization: Basic dXNlcjpwYXNz" },
        { code: "UNAUTHORIZED", message: "access_token=s3cr3t expired" },
      ],
    });
    const err = registryError({ status: 403, method: "PUT", url: "http://r/v2/x/manifests/v1", registryErrors: parseRegistryErrors(body) });
    expect(err.code).toBe("Denied");
    const text = `${err.message} ${JSON.stringify(err.details)}`;
    expect(text).not.toContain("eyJhbGciOiJSUzI1NiJ9");
    expect(text).not.toContain("dXNlcjpwYXNz");
    expect(parseRegistryErrors(body)[1]!.message).not.toContain("s3cr3t");
    expect(text).toContain("DENIED");
  });

  it.each([
    ["BLOB_UNKNOWN", 404, "NotFound"],
    ["BLOB_UPLOAD_UNKNOWN", 404, "NotFound"],
    ["MANIFEST_UNKNOWN", 404, "NotFound"],
    ["NAME_UNKNOWN", 404, "NotFound"],
    ["DENIED", 403, "Denied"],
    ["UNAUTHORIZED", 401, "Unauthorized"],
    ["TOOMANYREQUESTS", 429, "TooManyRequests"],
    ["DIGEST_INVALID", 400, "DigestMismatch"],
    ["SIZE_INVALID", 400, "SizeMismatch"],
    ["UNAVAILABLE", 503, "Unavailable"],
    ["MANIFEST_INVALID", 400, "Registry"],
  ])("registry code %s (HTTP %i) → %s, code kept in details", (registryCode, status, want) => {
    const err = registryError({ status, method: "GET", url: "http://r/v2/x", registryErrors: [{ code: registryCode }] });
    expect(err.code).toBe(want);
    expect(err.details).toMatchObject({ status, registryCodes: [registryCode] });
  });

  it.each([
    [401, "Unauthorized"],
    [403, "Denied"],
    [404, "NotFound"],
    [408, "Unavailable"],
    [416, "RangeNotSatisfiable"],
    [429, "TooManyRequests"],
    [500, "Unavailable"],
    [502, "Unavailable"],
    [400, "Registry"],
  ])("HTTP %i without a registry code → %s", (status, want) => {
    expect(registryError({ status, method: "HEAD", url: "http://r/v2/x", registryErrors: [] }).code).toBe(want);
  });

  it("returns the specific error class for each code, so instanceof works", () => {
    const classes = [
      [404, NotFoundError],
      [401, UnauthorizedError],
      [403, DeniedError],
      [429, TooManyRequestsError],
      [503, UnavailableError],
      [416, RangeNotSatisfiableError],
    ] as const;
    for (const [status, cls] of classes) {
      expect(registryError({ status, method: "GET", url: "http://r/v2/x", registryErrors: [] })).toBeInstanceOf(cls);
    }
    const body = (code: string) => [{ code }];
    expect(registryError({ status: 400, method: "PUT", url: "http://r", registryErrors: body("DIGEST_INVALID") })).toBeInstanceOf(DigestMismatchError);
    expect(registryError({ status: 400, method: "PUT", url: "http://r", registryErrors: body("SIZE_INVALID") })).toBeInstanceOf(SizeMismatchError);
    const other = registryError({ status: 400, method: "PUT", url: "http://r", registryErrors: body("MANIFEST_INVALID") });
    expect(other).toBeInstanceOf(FerryError);
    expect(other.code).toBe("Registry");
  });
});
