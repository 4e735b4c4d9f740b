// The CPU profile summary is shared by the benchmarks: bench/lib/profile.ts.
export * from '../../lib/profile.js';
