// Placeholder until the pull exists: shows the digest API.
import { digestOf } from "@ferry/core";
console.log(digestOf("ferry"));
