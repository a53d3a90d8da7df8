// Default Vite settings on purpose: the package must work without special configuration.
export default {};
