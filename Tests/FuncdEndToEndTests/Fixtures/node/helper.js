'use strict';

module.exports = { greet: (name) => `helped ${name}` };
