/**
 * Each step's time in a task's log (`lenix: STEP took N.NN s`, as the test script prints its stages): the
 * returned function says how long it has been since the previous call, or since the timer was made.
 */
export function stepTimer(say: (line: string) => void): (step: string) => void {
  let start = performance.now();
  return (step) => {
    const now = performance.now();
    say(`${step} took ${((now - start) / 1000).toFixed(2)} s`);
    start = now;
  };
}
