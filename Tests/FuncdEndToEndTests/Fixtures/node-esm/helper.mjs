export const helped = () => 'helped esm';
