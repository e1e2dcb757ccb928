// One reporter for the checks of tests/js: a FAIL line for each failed check, and the
// closing "N passed, N failed" line and exit status.

let passed = 0;
let failed = 0;

// Counts one check; prints it when it fails. Returns cond.
export function check(cond, what, detail = "") {
  if (cond) passed++;
  else { failed++; console.log(`FAIL ${what}${detail ? `: ${detail}` : ""}`); }
  return cond;
}

export function finish() {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
