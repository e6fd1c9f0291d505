"""The Cerebro compiler: IR, passes, LLVM code generation and the .cbx writer."""
