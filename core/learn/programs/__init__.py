"""Each Learn page's "code you would write" (core.learn.program.Program), one module per page."""
