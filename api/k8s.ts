// Kubernetes shapes every part shares: label selectors (and matching them), status conditions.
import { z } from 'zod';
import { lazy } from '../lib/lazy.js';

export const LabelSelectorRequirementSchema = lazy(() =>
  z
    .strictObject({
      key: z.string().min(1),
      operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
      values: z.array(z.string()).optional(),
    })
    .superRefine((r, ctx) => {
      const needsValues = r.operator === 'In' || r.operator === 'NotIn';
      if (needsValues && (!r.values || r.values.length === 0))
        ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${r.operator} needs at least one value` });
      if (!needsValues && r.values && r.values.length > 0)
        ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${r.operator} takes no values` });
    }),
);

/** metav1.LabelSelector. An empty selector matches every pod. */
export const LabelSelectorSchema = lazy(() =>
  z.strictObject({
    matchLabels: z.record(z.string(), z.string()).optional(),
    matchExpressions: z.array(LabelSelectorRequirementSchema()).optional(),
  }),
);
export type LabelSelector = z.infer<ReturnType<typeof LabelSelectorSchema>>;

/** Kubernetes label-selector semantics: every matchLabels entry and every expression must hold. */
export function matchesSelector(selector: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    switch (e.operator) {
      case 'In':
        if (!has || !e.values!.includes(value!)) return false;
        break;
      case 'NotIn':
        if (has && e.values!.includes(value!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

export const ConditionSchema = lazy(() =>
  z.object({
    type: z.string(),
    status: z.enum(['True', 'False', 'Unknown']),
    reason: z.string(),
    message: z.string(),
    lastTransitionTime: z.string(),
    observedGeneration: z.number().int().optional(),
  }),
);
export type Condition = z.infer<ReturnType<typeof ConditionSchema>>;

/**
 * Sets a condition the way Kubernetes controllers do: lastTransitionTime only moves when the
 * status changes, so a status write that changes nothing else is a no-op.
 */
export function setCondition(conditions: readonly Condition[] | undefined, next: Omit<Condition, 'lastTransitionTime'>, now: Date): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const prev = i >= 0 ? list[i] : undefined;
  const merged: Condition = { ...next, lastTransitionTime: prev && prev.status === next.status ? prev.lastTransitionTime : now.toISOString() };
  if (i >= 0) list[i] = merged;
  else list.push(merged);
  return list;
}
