// Error rendering (src/ui/format.ts): what reaches the terminal when a verb fails.
import {expect} from 'chai'

import {UserError} from '../../src/errors.js'
import {formatError} from '../../src/ui/format.js'

describe('formatError (src/ui/format.ts)', () => {
  it('keeps line breaks and tabs (oclif\'s parse errors), escapes other control characters', () => {
    const parse = new Error('Parsing --n \n\tExpected an integer but received: abc\nSee more help with --help')
    expect(formatError(parse, {bug: false, verbose: false, color: false})).to.equal('Error: Parsing --n \n\tExpected an integer but received: abc\nSee more help with --help\n')
    const hostile = new UserError('group "a\u001b]0;x\u0007b": unknown', {hint: 'fix\tit\u001b[2J'})
    expect(formatError(hostile, {bug: false, verbose: false, color: false})).to.equal('Error: group "a\\x1b]0;x\\x07b": unknown\n→ fix\tit\\x1b[2J\n')
  })
})
