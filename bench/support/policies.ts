// The benchmarks' Cedar policy set: n permits, each reading the call's tool name and one argument,
// the last one for the tool "echo" with the argument message "hi" (what bench/proxy.ts and
// bench/start.ts send), so the governed call's decision reads an argument.
export function policies(n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n - 1; i++) {
    out.push(
      `@id("p${i}")\npermit(principal, action == ThoughtGate::Action::"tools/call", resource) when { resource.name == "tool_${i}" && context.arguments has limit && context.arguments.limit < ${i + 10} };`,
    );
  }
  out.push(
    `@id("echo")\npermit(principal, action == ThoughtGate::Action::"tools/call", resource) when { resource.name == "echo" && context.arguments has message && context.arguments.message == "hi" };`,
  );
  return out.join('\n');
}
