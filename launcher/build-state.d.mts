/** The folders whose TypeScript the build compiles (tsconfig.build.json's include). */
export declare const SOURCE_DIRS: string[];
/** True when ROOT/dist/build.json exists and no source .ts file was modified after the build started. */
export declare function buildIsCurrent(root: string): boolean;
