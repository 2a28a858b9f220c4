/**
 * Limits how many uploads run at once. Dropping 30 files should not fire 30
 * simultaneous requests and trip the server's rate limit or queue bound.
 */

/**
 * @param {number} concurrency
 * @returns {(task: () => Promise<any>) => Promise<any>} run a task when a slot frees up
 */
export function createQueue(concurrency) {
  let running = 0;
  const waiting = [];

  function next() {
    if (running >= concurrency || !waiting.length) return;
    const { task, resolve, reject } = waiting.shift();
    running += 1;
    Promise.resolve()
      .then(task)
      .then(resolve, reject)
      .finally(() => {
        running -= 1;
        next();
      });
  }

  return (task) =>
    new Promise((resolve, reject) => {
      waiting.push({ task, resolve, reject });
      next();
    });
}
