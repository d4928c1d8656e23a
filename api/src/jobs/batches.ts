/**
 * Retention purges delete in batches, each its own statement, so no single transaction holds many row locks or
 * a large WAL record. `deleteBatch(limit)` deletes at most `limit` rows and says how many it did; the loop stops
 * at the first short batch. Returns the total.
 */
export async function deleteInBatches(limit: number, deleteBatch: (limit: number) => Promise<number>): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await deleteBatch(limit);
    total += deleted;
    if (deleted < limit) return total;
  }
}
