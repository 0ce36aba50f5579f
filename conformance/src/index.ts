export { cases, runConformance, SetupError, type CaseResult, type RunOptions, type RunReport } from './runner.js';
export { Contract, defaultSpecPath, type Answer, type Operation } from './contract.js';
export { FEATURES, type Case, type CaseContext, type Feature } from './case.js';
export { main } from './cli.js';
