// Config documents shared by several test files.

/** One source with a blocklist, a deny rule, a policy rule and Cedar policies that look at arguments. */
export function governedConfig(upstreamUrl: string, extra = ''): string {
  return `
sources:
  - name: up
    url: ${upstreamUrl}
    expose:
      mode: blocklist
      tools: ["get_secret"]
      resources: ["file:///secret/*"]
      prompts: ["secret_*"]
rules:
  - name: no-deletes
    match: { tool: "delete_*" }
    action: deny
    reason: deleting files is not allowed here
  - name: transfers
    match: { tool: "transfer_*" }
    action: policy
defaultAction: forward
cedar:
  policies: |
    @id("small-transfers")
    permit(principal, action == ThoughtGate::Action::"tools/call", resource)
      when { resource.name == "transfer_funds" && context.arguments.amount < 1000 };
    @id("large-transfers") @approve("finance")
    permit(principal, action == ThoughtGate::Action::"tools/call", resource)
      when { resource.name == "transfer_funds" && context.arguments.amount >= 1000 && context.arguments.amount < 100000 };
    @id("no-tagged-memos")
    forbid(principal, action, resource) when { context.arguments has memo && context.arguments.memo like "*URGENT*" };
${extra}`;
}
