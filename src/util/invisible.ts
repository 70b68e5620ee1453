/**
 * Characters that render as nothing: Unicode's default-ignorable code points (zero-width, bidi
 * controls, variation selectors, tags...) and the braille blank. Global: for `replace`.
 */
export const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\u2800]/gu;
