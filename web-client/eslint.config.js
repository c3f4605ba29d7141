// ESLint (flat config) for the web client's TypeScript: ESLint's recommended rules and
// typescript-eslint's type-checked recommended rules, with the type information of
// tsconfig.json. `npm test` and `npm run lint` run it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'test-artifacts/', 'e2e/', 'scripts/', 'eslint.config.js', 'vite.config.ts'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
  },
);
