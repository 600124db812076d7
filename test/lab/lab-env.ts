/**
 * The environment for a lab a test starts: this process's, without the test runner's own
 * variables (a `node --test` inside the lab must not think it reports to this one).
 */
export function labEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env['NODE_TEST_CONTEXT'];
  return env;
}
