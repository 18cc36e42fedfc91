// msgpackr requires this module inside try/catch and uses its pure-JavaScript path when it throws.
throw new Error('msgpackr-extract is stubbed out (see vendor/msgpackr-extract-stub/package.json)');
