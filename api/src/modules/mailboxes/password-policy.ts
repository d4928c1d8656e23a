import { invalid } from '../../http/problem.ts';

const weak = (pointer: string, detail: string) =>
  invalid([{ pointer, location: 'body', code: 'weak_password', detail }], `${pointer.slice(1)} ${detail}.`);

/**
 * The rule for every password a person chooses: the holder's and a collaborator's. Apart from the mailbox
 * service so that the delegation service, which the mailbox service calls when a mailbox ends, can use it too.
 */
export function validatePassword(password: string, pointer = '/password'): void {
  if (password.length < 10 || password.length > 128) throw weak(pointer, 'must be 10 to 128 characters');
  if (!/[A-Za-z]/.test(password) || !/[0-9]/.test(password)) throw weak(pointer, 'must contain letters and digits');
}
