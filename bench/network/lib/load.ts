// The bounded load generator is shared by the benchmarks: bench/lib/load.ts.
export * from '../../lib/load.js';
