#!/usr/bin/env node
'use strict';
require('../dist/client/cli.js')
  .main()
  .then((code) => process.exit(code));
