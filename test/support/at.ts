// list[i] in a test, failing with what was missing instead of passing on undefined.
export function at<T>(list: readonly T[] | undefined, i: number): T {
  const x = list?.[i];
  if (x === undefined) throw new Error(`no element ${i}: ${list ? `the list has ${list.length}` : 'no list'}`);
  return x;
}
