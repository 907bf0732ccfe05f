// A .js handler that is an ES module because package.json says "type": "module".
export default {
  handler: async (event) => `module: require is ${typeof require}, data ${event.data}`,
};
