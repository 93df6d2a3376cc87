"""The examples in the package's docstrings run and print what they say."""

import doctest

import speechrnn


def test_package_docstring_examples():
    failures, tried = doctest.testmod(speechrnn, verbose=False)
    assert tried >= 3 and failures == 0
