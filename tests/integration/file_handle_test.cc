// Tests of this file are added with the feature they check.
