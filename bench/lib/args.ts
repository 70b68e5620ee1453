/** The value after `--name` in argv, if any. */
export function argValue(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i === -1 ? undefined : argv[i + 1];
}

export function hasFlag(argv: readonly string[], name: string): boolean {
  return argv.includes(name);
}
