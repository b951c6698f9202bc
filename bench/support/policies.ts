// The benchmarks' Cedar policy set: n permits, each reading the call's tool name and one argument,
// the last one for the tool "echo" (what bench/proxy.ts and bench/start.ts send). bench/proxy.ts
// still has its own copy of this function (it is being rewritten elsewhere); it can import this one.
export function policies(n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n - 1; i++) {
    out.push(
      `@id("p${i}")\npermit(principal, action == ThoughtGate::Action::"tools/call", resource) when { resource.name == "tool_${i}" && context.arguments has limit && context.arguments.limit < ${i + 10} };`,
    );
  }
  out.push(`@id("echo")\npermit(principal, action == ThoughtGate::Action::"tools/call", resource) when { resource.name == "echo" };`);
  return out.join('\n');
}
