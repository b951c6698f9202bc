// Which of a namespace's policies governs this pod. Pure.
import { matchesSelector, type LabelSelector } from '../../api/k8s.js';

export interface Selectable {
  name: string;
  priority: number;
  podSelector?: LabelSelector;
}

/**
 * Orders policies the way GovernancePolicy documents it: priority high first, then name
 * (by code unit, like Go's string compare, so every part ranks the same way whatever the locale).
 * The operator renders them in this order already; sorting again costs nothing and means a
 * hand-edited or older ConfigMap cannot make two sidecars of one pod spec disagree.
 */
export function selectionOrder<P extends Selectable>(policies: readonly P[]): P[] {
  return [...policies].sort((a, b) => b.priority - a.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The first policy, in selection order, whose podSelector matches `labels`; null when none does. */
export function selectPolicy<P extends Selectable>(policies: readonly P[], labels: Readonly<Record<string, string>>): P | null {
  for (const p of selectionOrder(policies)) if (matchesSelector(p.podSelector, labels)) return p;
  return null;
}
