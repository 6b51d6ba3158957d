"""Build the compiled kernels of ``scoring`` (everything else is configured in pyproject.toml).

They are optional: without a C compiler the install goes on and numpy twins do the same work, more slowly.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "scoring._kernels",
            sources=["scoring/_kernels.c"],
            optional=True,
            extra_compile_args=["-O3", "-std=gnu11", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
