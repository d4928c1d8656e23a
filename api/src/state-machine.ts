import { ProblemError } from './http/problem.ts';

/**
 * An explicit state machine: for each action, the states it may start from. Anything else is a 409 problem
 * naming the current state, so clients can tell "already done" from "impossible".
 */
export type Transitions<State extends string, Action extends string> = Record<Action, readonly State[]>;

export function assertTransition<State extends string, Action extends string>(
  transitions: Transitions<State, Action>,
  resource: string,
  id: string,
  current: State,
  action: Action,
): void {
  const allowed = transitions[action];
  if (allowed.includes(current)) return;
  throw new ProblemError(
    409,
    'invalid_state_transition',
    'Conflict',
    `Cannot ${action.replace(/_/g, ' ')} ${resource} '${id}' while it is ${current}; allowed from: ${allowed.join(', ')}.`,
    { current_status: current, action, allowed_from: allowed },
  );
}
