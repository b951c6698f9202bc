// A value built on its first use rather than at import. For the zod schemas a module exports that
// most of its importers never use: building a schema tree costs start time (the standalone sidecar
// loads the ApprovalRequest, audit and capture-state modules for their constants and never parses
// those shapes; docs/performance.md, "Start to ready"). The same instance every call, so identity
// holds (gen-crds keys annotations by schema).
export function lazy<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => {
    built ??= { value: build() };
    return built.value;
  };
}
